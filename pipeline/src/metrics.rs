//! The one Prometheus registry and the per-node metrics every node reports.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// All metrics of one process. Cheap to clone (prometheus handles are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    component_series:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, IntCounterVec>>>,
    pub records_in: IntCounterVec,
    pub records_out: IntCounterVec,
    pub rejected: IntCounterVec,
    pub batch_latency: HistogramVec,
    pub queue_depth: IntGaugeVec,
    pub checkpoints: IntCounter,
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
        let mut owned = self
            .component_series
            .lock()
            .map_err(|_| crate::EngineError::Other("metrics registry poisoned".into()))?;
        if let Some(existing) = owned.get(name) {
            return Ok(existing.clone());
        }
        let family = IntCounterVec::new(Opts::new(name, help), labels)
            .and_then(|c| self.registry.register(Box::new(c.clone())).map(|_| c))
            .map_err(|e| crate::EngineError::Config(format!("metric {name}: {e}")))?;
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
}
