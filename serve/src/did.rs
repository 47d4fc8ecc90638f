//! The issuer's DID document (`did:web` layout, `GET /.well-known/did.json`): every issuer key
//! that signed certificates still in circulation, so a rotation never breaks old certificates.
//! `[did] key_files` lists the key files (or the verification method documents `divoc keys
//! generate` prints); only their public parts are read.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// `[did]` of `config/serve.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DidSection {
    /// Issuer key files, oldest first (relative to the serve file).
    pub key_files: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    #[serde(rename = "@context")]
    context: Vec<&'static str>,
    id: String,
    verification_method: Vec<Method>,
    assertion_method: Vec<String>,
    authentication: Vec<String>,
}

/// One public key: a DID document's verification method, and what the verify page trusts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Method {
    pub id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    pub controller: String,
    pub public_key_base58: String,
}

/// The public half of a key file or verification method document.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicPart {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    controller: Option<String>,
    #[serde(default)]
    verification_method: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<String>,
    public_key_base58: String,
}

/// The public keys of issuer key files or verification method documents (`[did]`,
/// `[verify]` key_files); `section` names the config section in errors.
pub fn read_methods(files: &[PathBuf], section: &str) -> Result<Vec<Method>> {
    let mut methods = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("[{section}] cannot read {}", file.display()))?;
        let p: PublicPart = serde_json::from_str(&text).with_context(|| {
            format!(
                "[{section}] {}: not a key file or verification method document",
                file.display()
            )
        })?;
        divoc_credential::keys::public_key_from_base58(&p.public_key_base58)
            .map_err(|e| anyhow::anyhow!("[{section}] {}: {e}", file.display()))?;
        let controller = p
            .issuer
            .or(p.controller)
            .with_context(|| format!("[{section}] {}: no issuer or controller", file.display()))?;
        let id = match (p.verification_method, p.id) {
            (Some(serde_json::Value::String(vm)), _) => vm,
            (_, Some(id)) => id,
            _ => bail!("[{section}] {}: no verification method id", file.display()),
        };
        methods.push(Method {
            id,
            kind: "Ed25519VerificationKey2018",
            controller,
            public_key_base58: p.public_key_base58,
        });
    }
    Ok(methods)
}

impl DidDocument {
    pub fn from_files(files: &[PathBuf]) -> Result<Self> {
        let methods = read_methods(files, "did")?;
        let Some(first) = methods.first() else {
            bail!("[did] key_files is empty: list the issuer's key files");
        };
        let id = first.controller.clone();
        if let Some(other) = methods.iter().find(|m| m.controller != id) {
            bail!(
                "[did] the keys belong to different issuers ({id:?} and {:?}): one DID document per issuer",
                other.controller
            );
        }
        let ids: Vec<String> = methods.iter().map(|m| m.id.clone()).collect();
        if let Some(dup) = ids.iter().enumerate().find(|(i, v)| ids[..*i].contains(v)) {
            bail!("[did] key id {:?} is listed twice: give each key its own id (divoc keys rotate does)", dup.1);
        }
        Ok(Self {
            context: vec![
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/suites/ed25519-2018/v1",
            ],
            id,
            verification_method: methods,
            assertion_method: ids.clone(),
            authentication: ids,
        })
    }
}
