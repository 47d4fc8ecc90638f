//! `render`: a printable PDF certificate per signed credential.
//!
//! Rows pass through unchanged plus the PDF (`pdf`) and the object key it is to be stored under
//! (`pdf_key`, `<prefix>/tenant=<t>/<certificate id>.pdf`); the `pdf_sink` stores it and
//! `publish` leaves the bytes out of the Parquet rows. PDFs are rendered on rayon over the batch.
//! Rendering is deterministic (no clock, content-hashed document id), so a replay produces
//! byte-identical PDFs.
//!
//! The dose history printed is what this batch holds for the beneficiary (the certificate itself
//! plus its other doses in the same batch); the download API prints the full history from the
//! store. A row whose PDF cannot be rendered keeps flowing (the certificate is valid) with a null
//! `pdf_key`, counted in the log by reason, so no certificate is lost to a rendering problem.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BinaryBuilder, StringBuilder};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use divoc_credential::VaccinationCredential;
use divoc_model::columns::{
    CERTIFICATE_ID, CREDENTIAL, PDF, PDF_KEY, PRE_ENROLLMENT_CODE, QR_PAYLOAD, TENANT,
};
use divoc_model::schema::sanitize_partition_value;
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::{Operator, Processed};
use divoc_pipeline::EngineError;
use divoc_render::{RenderRequest, Renderer};
use prometheus::IntCounter;
use rayon::prelude::*;
use serde::Deserialize;

/// Options of a `render` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderConfig {
    /// Directory holding `fonts/`, `templates/<tenant>/`, `languages.toml` and `assets/`
    /// (relative to the pipeline file; the shipped `config/` directory by default).
    #[serde(default = "default_templates")]
    pub templates: PathBuf,
    /// Print every certificate in this language; by default the recipient's state chooses.
    #[serde(default)]
    pub language: Option<String>,
    /// Template tenant for tenants without their own templates directory.
    #[serde(default = "default_template_tenant")]
    pub fallback_template: String,
    /// Key prefix of the PDFs.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Programs printed with their own template set (a directory under `templates/`), whatever
    /// the tenant: `program_templates = { MMR = "mmr" }`.
    #[serde(default)]
    pub program_templates: std::collections::BTreeMap<String, String>,
}

fn default_templates() -> PathBuf {
    PathBuf::from(".")
}
fn default_template_tenant() -> String {
    "default".into()
}
fn default_prefix() -> String {
    "certificates/pdf".into()
}

impl Component for RenderConfig {
    const KIND: &'static str = "render";
    const ROLE: Role = Role::Operator;
    const ABOUT: &'static str =
        "renders a PDF certificate per signed credential (store it with pdf_sink)";

    fn needs() -> Vec<Column> {
        vec![
            TENANT,
            PRE_ENROLLMENT_CODE,
            CERTIFICATE_ID,
            CREDENTIAL,
            QR_PAYLOAD,
        ]
    }
    fn adds() -> Vec<Column> {
        vec![PDF, PDF_KEY]
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        let dir = ctx.resolve(&self.templates);
        if !dir.join("templates").is_dir() || !dir.join("fonts").is_dir() {
            return Err(ConfigIssue::new(
                "templates",
                format!("{} has no templates/ and fonts/ directories", dir.display()),
                "point it at the shipped config/ directory (templates = \".\" from config/*.toml)",
            ));
        }
        let p = &self.prefix;
        if p.is_empty() || p.starts_with('/') || p.ends_with('/') || p.contains("..") {
            return Err(ConfigIssue::new(
                "prefix",
                format!("{p:?} is not a clean relative key prefix"),
                "use e.g. prefix = \"certificates/pdf\"",
            ));
        }
        for (program, set) in &self.program_templates {
            if !dir.join("templates").join(set).is_dir() {
                return Err(ConfigIssue::new(
                    format!("program_templates.{program}"),
                    format!("{} has no templates/{set}/", dir.display()),
                    "name a template set directory under templates/",
                ));
            }
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let dir = ctx.resolve(&self.templates);
        let renderer = Renderer::load(&dir)
            .map_err(|e| EngineError::Config(format!("render templates {}: {e}", dir.display())))?;
        if let Some(lang) = &self.language {
            renderer
                .check_language(&self.fallback_template, lang)
                .map_err(|e| EngineError::Config(format!("render.language: {e}")))?;
        }
        let failures = ctx.metrics.counter_vec(
            "render_failures_total",
            "Certificates passed on without a PDF because rendering failed",
            &["node"],
        )?;
        Ok(BuiltNode::Operator(Box::new(Render {
            renderer: Arc::new(renderer),
            cfg: self,
            failures: failures.with_label_values(&[ctx.node]),
        })))
    }
}

pub struct Render {
    renderer: Arc<Renderer>,
    cfg: RenderConfig,
    failures: IntCounter,
}

struct Row {
    tenant: String,
    program: Option<String>,
    pre: String,
    certificate_id: String,
    credential: Option<VaccinationCredential>,
    qr: Vec<u8>,
}

impl Render {
    /// The template set of a row: its program's, else its tenant's, else the fallback.
    fn template_tenant<'a>(&'a self, tenant: &'a str, program: Option<&str>) -> &'a str {
        if let Some(set) = program.and_then(|p| self.cfg.program_templates.get(p)) {
            return set;
        }
        if self.renderer.has_tenant(tenant) {
            tenant
        } else {
            &self.cfg.fallback_template
        }
    }

    fn render_row(&self, row: &Row, history: &[&VaccinationCredential]) -> Result<Vec<u8>, String> {
        let cred = row
            .credential
            .as_ref()
            .ok_or_else(|| "credential is not a DIVOC credential".to_owned())?;
        let matrix = divoc_qr::QrPayload::DivocZip(row.qr.clone())
            .to_matrix()
            .map_err(|e| e.to_string())?;
        let mut doses: Vec<VaccinationCredential> = history.iter().map(|c| (*c).clone()).collect();
        let current = doses.iter().position(|c| c == cred).unwrap_or_else(|| {
            doses.push(cred.clone());
            doses.len() - 1
        });
        let rendered = self
            .renderer
            .render(&RenderRequest {
                tenant: self.template_tenant(&row.tenant, row.program.as_deref()),
                language: self.cfg.language.as_deref(),
                doses: &doses,
                current,
                qr: &matrix,
            })
            .map_err(|e| e.to_string())?;
        Ok(rendered)
    }
}

impl Operator for Render {
    fn process(&mut self, batch: RecordBatch, _stage: &str) -> Result<Processed, EngineError> {
        let text = |name: &str| -> Result<&arrow::array::StringArray, EngineError> {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| {
                    EngineError::Schema(format!(
                        "render needs Utf8 column {name} (put sign and qr_payload before it)"
                    ))
                })
        };
        let tenant = text(TENANT.name)?;
        let program = batch
            .column_by_name(divoc_model::schema::PROGRAM_ID)
            .and_then(|c| c.as_string_opt::<i32>());
        let pre = text(PRE_ENROLLMENT_CODE.name)?;
        let ids = text(CERTIFICATE_ID.name)?;
        let creds = text(CREDENTIAL.name)?;
        let qr = batch
            .column_by_name(QR_PAYLOAD.name)
            .and_then(|c| c.as_binary_opt::<i32>())
            .ok_or_else(|| EngineError::Schema("render needs the qr_payload column".into()))?;
        let rows: Vec<Row> = (0..batch.num_rows())
            .into_par_iter()
            .map(|i| Row {
                tenant: tenant.value(i).to_owned(),
                program: program
                    .filter(|p| p.is_valid(i))
                    .map(|p| p.value(i).to_owned()),
                pre: pre.value(i).to_owned(),
                certificate_id: ids.value(i).to_owned(),
                credential: creds
                    .is_valid(i)
                    .then(|| serde_json::from_str(creds.value(i)).ok())
                    .flatten()
                    .and_then(|v| VaccinationCredential::from_json(&v).ok()),
                qr: qr.value(i).to_vec(),
            })
            .collect();
        let mut history: HashMap<(&str, &str), Vec<&VaccinationCredential>> = HashMap::new();
        for r in &rows {
            if let Some(c) = &r.credential {
                history.entry((&r.tenant, &r.pre)).or_default().push(c);
            }
        }
        // Per row: (object key, PDF), none for a row without a certificate, or why not.
        type Outcome = Result<Option<(String, Vec<u8>)>, String>;
        let outcomes: Vec<Outcome> = rows
            .par_iter()
            .enumerate()
            .map(|(i, r)| {
                // No credential: an event that issues no certificate (revoke, suspend, lift).
                if creds.is_null(i) {
                    return Ok(None);
                }
                let doses = history
                    .get(&(r.tenant.as_str(), r.pre.as_str()))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let pdf = self.render_row(r, doses)?;
                let key = format!(
                    "{}/tenant={}/{}.pdf",
                    self.cfg.prefix,
                    sanitize_partition_value(&r.tenant),
                    sanitize_partition_value(&r.certificate_id)
                );
                Ok(Some((key, pdf)))
            })
            .collect();
        let mut keys = StringBuilder::with_capacity(rows.len(), rows.len() * 48);
        let pdf_bytes: usize = outcomes
            .iter()
            .map(|o| match o {
                Ok(Some((_, p))) => p.len(),
                _ => 0,
            })
            .sum();
        let mut pdfs = BinaryBuilder::with_capacity(rows.len(), pdf_bytes);
        let mut failures: HashMap<String, u64> = HashMap::new();
        for o in outcomes {
            match o {
                Ok(Some((key, pdf))) => {
                    keys.append_value(&key);
                    pdfs.append_value(&pdf);
                }
                Ok(None) => {
                    keys.append_null();
                    pdfs.append_null();
                }
                Err(reason) => {
                    keys.append_null();
                    pdfs.append_null();
                    *failures.entry(reason).or_default() += 1;
                }
            }
        }
        for (reason, n) in failures {
            self.failures.inc_by(n);
            tracing::warn!(count = n, %reason, "render: PDFs not rendered; certificates pass on without pdf_key");
        }
        let output = append_columns(
            &batch,
            vec![
                (PDF, Arc::new(pdfs.finish()) as Arc<dyn Array>),
                (PDF_KEY, Arc::new(keys.finish())),
            ],
        )?;
        Ok(Processed {
            output,
            dead_letters: None,
        })
    }
}

fn append_columns(
    batch: &RecordBatch,
    added: Vec<(Column, Arc<dyn Array>)>,
) -> Result<RecordBatch, EngineError> {
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    let mut columns = batch.columns().to_vec();
    for (column, values) in added {
        fields.push(Arc::new(column.field()));
        columns.push(values);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| EngineError::Schema(format!("render output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_template_set_comes_before_the_tenants() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let cfg: RenderConfig = toml::from_str("program_templates = { MMR = \"mmr\" }").unwrap();
        let r = Render {
            renderer: Arc::new(Renderer::load(&dir).unwrap()),
            cfg,
            failures: IntCounter::new("f", "f").unwrap(),
        };
        assert_eq!(r.template_tenant("default", Some("MMR")), "mmr");
        assert_eq!(r.template_tenant("default", Some("C19")), "default");
        assert_eq!(
            r.template_tenant("unknown", None),
            "default",
            "the fallback"
        );
        let missing = r.cfg.check(&CheckContext { config_dir: &dir });
        assert_eq!(missing.unwrap_err().key, "program_templates.MMR");
    }
}
