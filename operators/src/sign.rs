//! `sign`: builds each event's DIVOC-native credential (typed, field for field) and signs it, a
//! whole batch in parallel on rayon, with the program's proof suite: `Ed25519Signature2018`
//! over URDNA2015 (DIVOC's), `Ed25519Signature2020` (VC 1.1) or `eddsa-rdfc-2022` (VC 2.0), and
//! with `credentialStatus` entries where the program enables status lists.
//!
//! Deterministic under replay: `issuanceDate` and the proof's `created` are the event's durable
//! ingest time, the certificate id comes from `dedupe`, and Ed25519 signatures are deterministic,
//! so a replayed epoch rewrites identical bytes.
//!
//! The issuer is the controller of the verification method (`<issuer>#<key id>`), which current
//! verifiers require and DIVOC's own credentials did not satisfy.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray, StringBuilder};
use arrow::datatypes::{Date32Type, Int64Type, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use divoc_credential::credential::{
    mask_identity, subject_id, Address, CredentialSubject, Dose, Evidence, Facility, Verifier,
    CREDENTIAL_TYPES,
};
use divoc_credential::status_list::{is_safe_program_id, StatusEntry, StatusPosition};
use divoc_credential::{
    Canonicalizer, CredentialVersion, DocumentLoader, ProofSuite, SigningKey,
    VaccinationCredential, VaccinationNamespace,
};
use divoc_model::columns::{CERTIFICATE_ID, CREDENTIAL, EVENT_COLUMNS, RAW};
use divoc_model::event::EventKind;
use divoc_model::schema::{self, format_date};
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::dead_letter::{Reason, Rejections};
use divoc_pipeline::operator::{Operator, Processed};
use divoc_pipeline::EngineError;
use rayon::prelude::*;
use serde::Deserialize;

use crate::keys::IssuerKey;
use divoc_model::catalogue::VaccineCatalogue;

/// Options of a `sign` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignConfig {
    /// Issuer key file written by `divoc keys generate` (relative to the pipeline file).
    pub key_file: PathBuf,
    /// Vaccine catalogue, for the v2 credential's `icd11Code` and `prophylaxis`.
    pub catalogue: PathBuf,
    /// URL of the vaccination v1 context (DIVOC deployments choose their namespace).
    #[serde(default = "default_v1")]
    pub context_v1: String,
    /// URL of the vaccination v2 context.
    #[serde(default = "default_v2")]
    pub context_v2: String,
    /// `evidence.id` = this + certificate id.
    #[serde(default = "default_base")]
    pub certificate_base_url: String,
    #[serde(default = "default_info")]
    pub info_url: String,
    #[serde(default = "default_feedback")]
    pub feedback_url: String,
    /// Prefix for recipient identities that are not already URIs.
    #[serde(default = "default_did_prefix")]
    pub identity_did_prefix: String,
    /// Proof suite: `Ed25519Signature2018` (DIVOC's own, what its verifiers accept; the
    /// default), `Ed25519Signature2020` (VC 1.1) or `eddsa-rdfc-2022` (VC 2.0, `validFrom`).
    #[serde(default)]
    pub proof_suite: ProofSuite,
    /// Give each credential `credentialStatus` entries (revocation and suspension bits of the
    /// `status_list` sink's lists). Off by default: DIVOC's verifiers do not read them.
    #[serde(default)]
    pub credential_status: bool,
    /// Public URL of the status lists (the `status_list` node's `base_url`).
    #[serde(default = "default_status_base")]
    pub status_base_url: String,
    /// Sign only the last four digits of the recipient's identity number into the credential
    /// (`credentialSubject.id`; DIVOC masked Aadhaar so). Off by default: DIVOC-native.
    #[serde(default)]
    pub mask_identity: bool,
    /// Programs (optionally of one tenant) signed with their own issuer key, contexts or URLs;
    /// what an entry leaves out comes from the node's options.
    #[serde(default)]
    pub programs: Vec<SignProgram>,
}

/// One program's signing profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignProgram {
    /// The events' `programId`.
    pub id: String,
    /// Only this tenant's events of the program (default: every tenant's).
    #[serde(default)]
    pub tenant: Option<String>,
    /// The program's issuer key (its issuer becomes the credentials' `issuer`).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub context_v1: Option<String>,
    #[serde(default)]
    pub context_v2: Option<String>,
    #[serde(default)]
    pub certificate_base_url: Option<String>,
    #[serde(default)]
    pub info_url: Option<String>,
    #[serde(default)]
    pub feedback_url: Option<String>,
    #[serde(default)]
    pub proof_suite: Option<ProofSuite>,
    #[serde(default)]
    pub credential_status: Option<bool>,
    #[serde(default)]
    pub mask_identity: Option<bool>,
}

/// What one profile signs with.
#[derive(Debug, Clone)]
struct ProfileConfig {
    suite: ProofSuite,
    credential_status: bool,
    mask_identity: bool,
    key_file: PathBuf,
    context_v1: String,
    context_v2: String,
    certificate_base_url: String,
    info_url: String,
    feedback_url: String,
}

impl SignConfig {
    /// The node's own profile, then one per program entry (the entry's options over the node's).
    fn profiles(&self) -> Vec<ProfileConfig> {
        let base = ProfileConfig {
            suite: self.proof_suite,
            credential_status: self.credential_status,
            mask_identity: self.mask_identity,
            key_file: self.key_file.clone(),
            context_v1: self.context_v1.clone(),
            context_v2: self.context_v2.clone(),
            certificate_base_url: self.certificate_base_url.clone(),
            info_url: self.info_url.clone(),
            feedback_url: self.feedback_url.clone(),
        };
        let mut out = vec![base.clone()];
        for p in &self.programs {
            let or = |v: &Option<String>, d: &String| v.clone().unwrap_or_else(|| d.clone());
            out.push(ProfileConfig {
                suite: p.proof_suite.unwrap_or(base.suite),
                credential_status: p.credential_status.unwrap_or(base.credential_status),
                mask_identity: p.mask_identity.unwrap_or(base.mask_identity),
                key_file: p.key_file.clone().unwrap_or_else(|| base.key_file.clone()),
                context_v1: or(&p.context_v1, &base.context_v1),
                context_v2: or(&p.context_v2, &base.context_v2),
                certificate_base_url: or(&p.certificate_base_url, &base.certificate_base_url),
                info_url: or(&p.info_url, &base.info_url),
                feedback_url: or(&p.feedback_url, &base.feedback_url),
            });
        }
        out
    }
}

fn default_v1() -> String {
    divoc_credential::loader::DEFAULT_VACCINATION_V1_URL.into()
}
fn default_v2() -> String {
    divoc_credential::loader::DEFAULT_VACCINATION_V2_URL.into()
}
fn default_base() -> String {
    "https://divoc.example/vaccine/".into()
}
fn default_info() -> String {
    "https://divoc.example/learn".into()
}
fn default_feedback() -> String {
    "https://divoc.example/feedback".into()
}
fn default_status_base() -> String {
    divoc_credential::status_list::DEFAULT_BASE_URL.into()
}
fn default_did_prefix() -> String {
    "did:in.gov.uidai.aadhaar".into()
}

impl Component for SignConfig {
    const KIND: &'static str = "sign";
    const ROLE: Role = Role::Operator;
    /// The event fields it signs and the id `dedupe` gave the certificate.
    fn needs() -> Vec<Column> {
        let mut needs: Vec<Column> = EVENT_COLUMNS.into_iter().filter(|c| *c != RAW).collect();
        needs.push(CERTIFICATE_ID);
        needs
    }
    fn adds() -> Vec<Column> {
        vec![CREDENTIAL]
    }
    const ABOUT: &'static str =
        "DIVOC credential signed per program (Ed25519Signature2018/2020, eddsa-rdfc-2022), batch-parallel";

    fn check(&self, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        VaccineCatalogue::load(&ctx.resolve(&self.catalogue)).map_err(|e| {
            ConfigIssue::new("catalogue", e, "point `catalogue` at config/vaccines.toml")
        })?;
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.programs.iter().enumerate() {
            if p.id.is_empty() || !seen.insert((p.tenant.clone(), p.id.clone())) {
                return Err(ConfigIssue::new(
                    format!("programs[{i}].id"),
                    format!("program {:?} is empty or listed twice", p.id),
                    "give each program (and tenant) one entry",
                ));
            }
        }
        if !self.status_base_url.starts_with("https://")
            && !self.status_base_url.starts_with("http://")
        {
            return Err(ConfigIssue::new(
                "status_base_url",
                format!("{:?} is not an http(s) URL", self.status_base_url),
                "use the public URL of the read-side server's /status/v1",
            ));
        }
        for (i, profile) in self.profiles().iter().enumerate() {
            let at = |key: &str| match i {
                0 => key.to_owned(),
                n => format!("programs[{}].{key}", n - 1),
            };
            check_profile(profile, ctx)
                .map_err(|(key, problem, fix)| ConfigIssue::new(at(key), problem, fix))?;
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let catalogue =
            VaccineCatalogue::load(&ctx.resolve(&self.catalogue)).map_err(EngineError::Config)?;
        let mut keys = Vec::new();
        for p in self.profiles() {
            keys.push(IssuerKey::load(&ctx.resolve(&p.key_file)).map_err(EngineError::Config)?);
        }
        Ok(BuiltNode::Operator(Box::new(Sign::with_keys(
            self, keys, catalogue,
        ))))
    }
}

/// (key, problem, fix) of a profile's first bad option.
fn check_profile(
    p: &ProfileConfig,
    ctx: &CheckContext<'_>,
) -> Result<(), (&'static str, String, &'static str)> {
    IssuerKey::load(&ctx.resolve(&p.key_file)).map_err(|e| {
        (
            "key_file",
            e,
            "create one with `divoc keys generate --out <file> --issuer <url or did>`",
        )
    })?;
    for (key, url) in [
        ("context_v1", &p.context_v1),
        ("context_v2", &p.context_v2),
        ("certificate_base_url", &p.certificate_base_url),
    ] {
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err((
                key,
                format!("{url:?} is not an http(s) URL"),
                "use an absolute URL",
            ));
        }
    }
    if !p.context_v1.ends_with("/v1") || !p.context_v2.ends_with("/v2") {
        return Err((
            "context_v1",
            "context URLs must end in /v1 and /v2".into(),
            "e.g. https://example.org/credentials/vaccination/v1",
        ));
    }
    Ok(())
}

pub struct Sign {
    cfg: SignConfig,
    /// The node's profile first, then one per program entry.
    profiles: Vec<Profile>,
    /// (tenant, programId) and ("", programId) -> profile index.
    by_program: std::collections::HashMap<(String, String), usize>,
    catalogue: VaccineCatalogue,
}

/// Everything one issuer signs with.
struct Profile {
    cfg: ProfileConfig,
    key: IssuerKey,
    signing_key: SigningKey,
    canon: Canonicalizer,
    namespace: VaccinationNamespace,
}

impl Sign {
    /// A signer with one key for every program (`cfg.programs` must be empty).
    pub fn new(cfg: SignConfig, key: IssuerKey, catalogue: VaccineCatalogue) -> Self {
        Self::with_keys(cfg, vec![key], catalogue)
    }

    /// `keys`: the node's, then one per program entry, in order.
    pub fn with_keys(cfg: SignConfig, keys: Vec<IssuerKey>, catalogue: VaccineCatalogue) -> Self {
        let profiles = cfg
            .profiles()
            .into_iter()
            .zip(keys)
            .map(|(p, key)| Profile {
                canon: Canonicalizer::new(DocumentLoader::with_namespaces(
                    &p.context_v1,
                    &p.context_v2,
                )),
                namespace: VaccinationNamespace {
                    v1: p.context_v1.clone(),
                    v2: p.context_v2.clone(),
                },
                signing_key: key.signing_key(),
                key,
                cfg: p,
            })
            .collect();
        let by_program = cfg
            .programs
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.tenant.clone().unwrap_or_default(), p.id.clone()), i + 1))
            .collect();
        Self {
            cfg,
            profiles,
            by_program,
            catalogue,
        }
    }

    /// The profile of row `i`: its tenant's program entry, else the program's, else the node's.
    fn profile(&self, r: &Row<'_>) -> &Profile {
        let program = r.s(schema::PROGRAM_ID).unwrap_or_default();
        let tenant = r.s(schema::TENANT).unwrap_or_default();
        let at = self
            .by_program
            .get(&(tenant, program.clone()))
            .or_else(|| self.by_program.get(&(String::new(), program)))
            .copied()
            .unwrap_or(0);
        &self.profiles[at]
    }
}

fn iso_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

struct Row<'a> {
    b: &'a RecordBatch,
    i: usize,
}

impl Row<'_> {
    fn s(&self, name: &str) -> Option<String> {
        let c = self.b.column_by_name(name)?.as_string_opt::<i32>()?;
        (!c.is_null(self.i))
            .then(|| c.value(self.i))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
    fn date(&self, name: &str) -> Option<String> {
        let c = self
            .b
            .column_by_name(name)?
            .as_primitive_opt::<Date32Type>()?;
        (!c.is_null(self.i)).then(|| format_date(c.value(self.i)))
    }
    fn int(&self, name: &str) -> Option<i64> {
        let c = self
            .b
            .column_by_name(name)?
            .as_primitive_opt::<Int64Type>()?;
        (!c.is_null(self.i)).then(|| c.value(self.i))
    }
    fn ts(&self, name: &str) -> Option<i64> {
        let c = self
            .b
            .column_by_name(name)?
            .as_primitive_opt::<TimestampMillisecondType>()?;
        (!c.is_null(self.i)).then(|| c.value(self.i))
    }
    fn address(&self, prefix: &str) -> Option<Address> {
        let a = Address {
            street_address: self.s(&format!("{prefix}_line1")),
            street_address2: self.s(&format!("{prefix}_line2")),
            district: self.s(&format!("{prefix}_district")),
            city: self.s(&format!("{prefix}_district")),
            address_region: self.s(&format!("{prefix}_state")),
            address_country: self.s(&format!("{prefix}_country")),
            postal_code: self.s(&format!("{prefix}_pincode")),
        };
        (a != Address::default()).then_some(a)
    }
}

impl Sign {
    /// The unsigned credential for row `i`, exactly DIVOC's template (v1 or v2 by event kind).
    pub fn credential(&self, b: &RecordBatch, i: usize) -> Result<VaccinationCredential, String> {
        let r = Row { b, i };
        let profile = self.profile(&r);
        let version = match r.s(schema::EVENT_KIND).as_deref() {
            Some("certify_v3") => CredentialVersion::V2,
            _ => CredentialVersion::V1,
        };
        let cert_id = r
            .s(schema::CERTIFICATE_ID)
            .ok_or("certificate_id missing (put dedupe before sign)")?;
        let pre = r
            .s(schema::PRE_ENROLLMENT_CODE)
            .ok_or("preEnrollmentCode missing")?;
        let ingest = r.ts(schema::INGEST_TIME).ok_or("ingest_time missing")?;
        let vaccine = r.s(schema::VACCINE_NAME);
        let icd = vaccine.as_deref().and_then(|v| self.catalogue.lookup(v));
        let dob = r.date(schema::RECIPIENT_DOB);
        // DIVOC derives age from dob when the registry sent none: floor((now - dob) / 365.25 days).
        let age = r.s(schema::RECIPIENT_AGE).or_else(|| {
            let days =
                r.b.column_by_name(schema::RECIPIENT_DOB)?
                    .as_primitive_opt::<Date32Type>()?;
            (!days.is_null(i)).then(|| {
                (((ingest / 86_400_000) - i64::from(days.value(i))) as f64 / 365.25)
                    .floor()
                    .to_string()
            })
        });
        let v2 = version == CredentialVersion::V2;
        let suite = profile.cfg.suite;
        let credential_status = if profile.cfg.credential_status {
            let program = r
                .s(schema::PROGRAM_ID)
                .filter(|p| is_safe_program_id(p))
                .ok_or("credential_status needs a programId of letters, digits, '.', '_', '-'")?;
            let position = StatusPosition::of_certificate(&cert_id)
                .ok_or("credential_status needs numeric certificate ids")?;
            StatusEntry::for_certificate(&self.cfg.status_base_url, &program, position)
        } else {
            Vec::new()
        };
        Ok(VaccinationCredential {
            context: version.contexts_for(&profile.namespace, suite, !credential_status.is_empty()),
            types: CREDENTIAL_TYPES.iter().map(|s| s.to_string()).collect(),
            credential_subject: CredentialSubject {
                subject_type: "Person".into(),
                id: {
                    let identity = r.s(schema::RECIPIENT_IDENTITY).unwrap_or_default();
                    let identity = if profile.cfg.mask_identity {
                        mask_identity(&identity)
                    } else {
                        identity
                    };
                    subject_id(&identity, &pre, &self.cfg.identity_did_prefix)
                },
                ref_id: Some(pre),
                uhid: None,
                name: r.s(schema::RECIPIENT_NAME),
                gender: r.s("recipient_gender"),
                age,
                nationality: r.s("recipient_nationality"),
                dob: if v2 { dob } else { None },
                address: r.address("recipient_address"),
            },
            issuer: profile.key.issuer.clone(),
            issuance_date: if suite.is_vc2() {
                String::new()
            } else {
                iso_millis(ingest)
            },
            valid_from: suite.is_vc2().then(|| iso_millis(ingest)),
            evidence: vec![Evidence {
                id: format!("{}{}", profile.cfg.certificate_base_url, cert_id),
                info_url: Some(profile.cfg.info_url.clone()),
                feedback_url: Some(profile.cfg.feedback_url.clone()),
                certificate_id: Some(cert_id),
                types: vec!["Vaccination".into()],
                batch: r.s("vaccine_batch"),
                vaccine,
                manufacturer: r.s("vaccine_manufacturer"),
                icd11_code: if v2 {
                    icd.map(|e| e.icd11.clone())
                } else {
                    None
                },
                prophylaxis: if v2 {
                    icd.map(|e| e.prophylaxis.clone())
                } else {
                    None
                },
                date: r.ts(schema::VACCINATION_DATE).map(iso_millis),
                effective_start: r.date(schema::EFFECTIVE_START),
                effective_until: r.date(schema::EFFECTIVE_UNTIL),
                dose: r.int(schema::DOSE).map(|d| Dose::Number(d as u32)),
                total_doses: r.int(schema::TOTAL_DOSES).map(|d| Dose::Number(d as u32)),
                verifier: r.s("vaccinator_name").map(|n| Verifier { name: Some(n) }),
                facility: Some(Facility {
                    name: r.s("facility_name"),
                    address: r.address("facility_address"),
                }),
            }],
            non_transferable: "true".into(),
            credential_status,
            proof: None,
        })
    }

    fn sign_row(&self, b: &RecordBatch, i: usize) -> Result<String, String> {
        let cred = self.credential(b, i)?;
        let profile = self.profile(&Row { b, i });
        let created = cred.issued_at().to_owned();
        let doc = cred.to_json().map_err(|e| e.to_string())?;
        let signed = divoc_credential::sign_with_suite(
            &profile.canon,
            &doc,
            &profile.signing_key,
            &profile.key.verification_method,
            &created,
            profile.cfg.suite,
        )
        .map_err(|e| e.to_string())?;
        serde_json::to_string(&signed).map_err(|e| e.to_string())
    }
}

impl Operator for Sign {
    fn process(&mut self, batch: RecordBatch, stage: &str) -> Result<Processed, EngineError> {
        let n = batch.num_rows();
        let this = &*self;
        let kinds = batch
            .column_by_name(schema::EVENT_KIND)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| EngineError::Schema("sign needs Utf8 column event_kind".into()))?;
        // Revoke, suspend and lift events change a certificate's status: nothing to sign.
        let issues =
            |i: usize| EventKind::parse(kinds.value(i)).is_none_or(EventKind::issues_certificate);
        let signed: Vec<Option<Result<String, String>>> = (0..n)
            .into_par_iter()
            .with_min_len(64)
            .map(|i| issues(i).then(|| this.sign_row(&batch, i)))
            .collect();
        let mut out = StringBuilder::with_capacity(n, n * 2048);
        let mut keep = Vec::with_capacity(n);
        let mut rejections = Rejections::default();
        for (i, s) in signed.into_iter().enumerate() {
            match s {
                None => {
                    out.append_null();
                    keep.push(true);
                }
                Some(Ok(json)) => {
                    out.append_value(json);
                    keep.push(true);
                }
                Some(Err(e)) => {
                    rejections.push(i, Reason::new("sign_failed", e));
                    keep.push(false);
                }
            }
        }
        Processed::keep_and_append_columns(
            &batch,
            keep,
            rejections,
            vec![(CREDENTIAL.field(), Arc::new(out.finish()) as _)],
            stage,
        )
    }
}

/// Reads the credential column of a batch (tests, tools).
pub fn credentials(batch: &RecordBatch) -> Vec<String> {
    batch
        .column_by_name(CREDENTIAL.name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
        .map(|c| (0..c.len()).map(|i| c.value(i).to_owned()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
