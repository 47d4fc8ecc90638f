//! Sinks: where batches leave the pipeline, each through the two-phase commit of
//! [`divoc_pipeline::sink`].

pub mod analytics;
pub mod blob;
pub mod dead_letter;
pub mod manifest;
pub mod ndjson;
pub mod publish;
pub mod status_list;
pub mod translog;
pub mod webhook;

use divoc_pipeline::config::ConfigIssue;

/// A clean relative object-key prefix: no empty, `.` or `..` segment, no leading or trailing `/`.
pub(crate) fn check_prefix(prefix: &str, example: &str) -> Result<(), ConfigIssue> {
    if prefix.is_empty()
        || prefix.starts_with('/')
        || prefix.ends_with('/')
        || prefix
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(ConfigIssue::new(
            "prefix",
            format!("{prefix:?} is not a clean relative key prefix"),
            format!("use e.g. prefix = \"{example}\""),
        ));
    }
    if ["checkpoints"].contains(&prefix) {
        return Err(ConfigIssue::new(
            "prefix",
            format!("{prefix:?} is reserved for checkpoint manifests"),
            "choose another prefix",
        ));
    }
    Ok(())
}
