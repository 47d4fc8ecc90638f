//! Operators of the DIVOC pipeline. Each is one module with a typed config (a
//! [`divoc_pipeline::config::Component`]), a build step and its own tests.

pub mod dedupe;
pub mod keys;
pub mod qr_payload;
pub mod render;
pub mod sign;
pub mod validate;

#[cfg(test)]
mod testutil;
