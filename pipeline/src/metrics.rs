//! The one Prometheus registry and the per-node metrics every node reports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// A family a component registered by name (see [`Metrics::counter_vec`]).
#[derive(Clone)]
enum ComponentFamily {
    Counter(IntCounterVec),
    Histogram(HistogramVec),
}

impl ComponentFamily {
    fn kind(&self) -> &'static str {
        match self {
            ComponentFamily::Counter(_) => "a counter",
            ComponentFamily::Histogram(_) => "a histogram",
        }
    }
}

/// All metrics of one process. Cheap to clone (prometheus handles are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    component_series: Arc<Mutex<HashMap<String, ComponentFamily>>>,
    pub records_in: IntCounterVec,
    pub records_out: IntCounterVec,
    pub rejected: IntCounterVec,
    pub batch_latency: HistogramVec,
    pub queue_depth: IntGaugeVec,
    pub checkpoints: IntCounter,
    /// `divoc_checkpoint_duration_seconds`: from an epoch's trigger to its stored checkpoint.
    pub checkpoint_duration: Histogram,
    pub last_epoch: IntGauge,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Metric definitions are static; a failure here is a programming error (duplicate name).
    r.expect("static metric definition is valid")
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("divoc".into()), None)
            .expect("static registry prefix is valid");
        let records_in = must(IntCounterVec::new(
            Opts::new("records_in_total", "Records received by a node"),
            &["node"],
        ));
        let records_out = must(IntCounterVec::new(
            Opts::new("records_out_total", "Records emitted by a node"),
            &["node"],
        ));
        let rejected = must(IntCounterVec::new(
            Opts::new(
                "records_rejected_total",
                "Records dead-lettered by a node, by reason",
            ),
            &["node", "reason"],
        ));
        let batch_latency = must(HistogramVec::new(
            HistogramOpts::new("batch_latency_seconds", "Time a node spends on one batch").buckets(
                vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5,
                ],
            ),
            &["node"],
        ));
        let queue_depth = must(IntGaugeVec::new(
            Opts::new("queue_depth", "Batches waiting on a node's input"),
            &["node"],
        ));
        let checkpoints = must(IntCounter::new(
            "checkpoints_total",
            "Checkpoints committed",
        ));
        let checkpoint_duration = must(Histogram::with_opts(
            HistogramOpts::new(
                "checkpoint_duration_seconds",
                "Time from an epoch's trigger to its committed checkpoint",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
        ));
        let last_epoch = must(IntGauge::new(
            "last_committed_epoch",
            "Epoch of the last committed checkpoint",
        ));
        for c in [&records_in, &records_out] {
            must(registry.register(Box::new(c.clone())));
        }
        must(registry.register(Box::new(rejected.clone())));
        must(registry.register(Box::new(batch_latency.clone())));
        must(registry.register(Box::new(queue_depth.clone())));
        must(registry.register(Box::new(checkpoints.clone())));
        must(registry.register(Box::new(checkpoint_duration.clone())));
        must(registry.register(Box::new(last_epoch.clone())));
        Self {
            registry,
            component_series: Default::default(),
            records_in,
            records_out,
            rejected,
            batch_latency,
            queue_depth,
            checkpoints,
            checkpoint_duration,
            last_epoch,
        }
    }

    /// A component's own counter family, registered once in the one registry (the name gets the
    /// `divoc_` prefix; follow Prometheus conventions: `_total`, base units). Asking again with
    /// the same name returns the same family, so two nodes of one kind share it and tell
    /// themselves apart by label.
    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, crate::EngineError> {
        let family = self.component_family(name, || {
            IntCounterVec::new(Opts::new(name, help), labels)
                .and_then(|c| self.registry.register(Box::new(c.clone())).map(|_| c))
                .map(ComponentFamily::Counter)
        })?;
        match family {
            ComponentFamily::Counter(c) => Ok(c),
            other => Err(kind_clash(name, "a counter", &other)),
        }
    }

    /// A component's own histogram family (name in base units, ending in `_seconds`,
    /// `_bytes`...), registered once like [`Metrics::counter_vec`]: asking again with the same
    /// name returns the same family (the first caller's help and buckets). `buckets` (upper
    /// bounds) must be non-empty, finite and strictly increasing; Prometheus adds `+Inf`.
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> Result<HistogramVec, crate::EngineError> {
        // The prometheus crate checks buckets only when a labelled child is created (and panics
        // there), so they are checked here, where the component can still report it.
        let increasing = buckets.windows(2).all(|w| w[0] < w[1]);
        if buckets.is_empty() || !increasing || buckets.iter().any(|b| !b.is_finite()) {
            return Err(crate::EngineError::Config(format!(
                "metric {name}: buckets {buckets:?} must be finite and strictly increasing"
            )));
        }
        let family = self.component_family(name, || {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )
            .and_then(|h| self.registry.register(Box::new(h.clone())).map(|_| h))
            .map(ComponentFamily::Histogram)
        })?;
        match family {
            ComponentFamily::Histogram(h) => Ok(h),
            other => Err(kind_clash(name, "a histogram", &other)),
        }
    }

    /// The family registered under `name`, creating it with `create` on first use.
    fn component_family(
        &self,
        name: &str,
        create: impl FnOnce() -> prometheus::Result<ComponentFamily>,
    ) -> Result<ComponentFamily, crate::EngineError> {
        let mut owned = self
            .component_series
            .lock()
            .map_err(|_| crate::EngineError::Other("metrics registry poisoned".into()))?;
        if let Some(existing) = owned.get(name) {
            return Ok(existing.clone());
        }
        let family =
            create().map_err(|e| crate::EngineError::Config(format!("metric {name}: {e}")))?;
        owned.insert(name.to_owned(), family.clone());
        Ok(family)
    }

    /// Text exposition format for `/metrics`.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding to a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

fn kind_clash(name: &str, wanted: &str, existing: &ComponentFamily) -> crate::EngineError {
    crate::EngineError::Config(format!(
        "metric {name}: asked for {wanted}, but it is registered as {}; give it another name",
        existing.kind()
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_register_their_own_series_once() {
        let m = Metrics::new();
        let a = m
            .counter_vec("widgets_total", "Widgets made", &["node"])
            .unwrap();
        let b = m
            .counter_vec("widgets_total", "Widgets made", &["node"])
            .unwrap();
        a.with_label_values(&["x"]).inc();
        b.with_label_values(&["x"]).inc();
        let text = m.render();
        assert!(text.contains("divoc_widgets_total{node=\"x\"} 2"), "{text}");
        assert!(m
            .counter_vec("records_in_total", "clash", &["node"])
            .is_err());
    }

    #[test]
    fn components_register_their_own_histograms_once() {
        let m = Metrics::new();
        let buckets = [0.1, 1.0];
        let a = m
            .histogram_vec("widget_seconds", "Time per widget", &["node"], &buckets)
            .unwrap();
        let b = m
            .histogram_vec("widget_seconds", "Time per widget", &["node"], &buckets)
            .unwrap();
        a.with_label_values(&["x"]).observe(0.05);
        b.with_label_values(&["x"]).observe(0.5);
        let text = m.render();
        for line in [
            "divoc_widget_seconds_bucket{node=\"x\",le=\"0.1\"} 1",
            "divoc_widget_seconds_bucket{node=\"x\",le=\"1\"} 2",
            "divoc_widget_seconds_bucket{node=\"x\",le=\"+Inf\"} 2",
            "divoc_widget_seconds_count{node=\"x\"} 2",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        // Engine names, a name taken by a counter, and unordered buckets are refused.
        assert!(m
            .histogram_vec("batch_latency_seconds", "clash", &["node"], &buckets)
            .is_err());
        m.counter_vec("gadgets_total", "Gadgets", &["node"])
            .unwrap();
        assert!(m
            .histogram_vec("gadgets_total", "clash", &["node"], &buckets)
            .is_err());
        assert!(m.counter_vec("widget_seconds", "clash", &["node"]).is_err());
        for bad in [
            &[1.0, 0.1][..],
            &[0.1, 0.1],
            &[],
            &[0.1, f64::NAN],
            &[f64::INFINITY],
        ] {
            assert!(
                m.histogram_vec("bad_seconds", "bad buckets", &["node"], bad)
                    .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn checkpoint_duration_is_exported_before_the_first_checkpoint() {
        let text = Metrics::new().render();
        assert!(
            text.contains("# TYPE divoc_checkpoint_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("divoc_checkpoint_duration_seconds_count 0"),
            "{text}"
        );
    }
}
