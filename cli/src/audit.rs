//! `divoc verify --audit <server>`: is this certificate in the issuer's transparency log?
//!
//! Fetches the server's latest signed tree head and checks it with the log's public key, fetches
//! the certificate's entries with their audit paths and checks each against that root (RFC 9162),
//! and finds the entry whose credential hash is this file's. With `--since <tree head file>` it
//! also checks that the log only grew since that head (a consistency proof).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use divoc_serve::transparency::{ConsistencyAnswer, InclusionAnswer};
use divoc_translog::entry::sha256_hex;
use divoc_translog::{verify_consistency, verify_inclusion, Hash, SignedTreeHead};

fn unhex(s: &str) -> Result<Hash> {
    if s.len() != 64 {
        bail!("{s:?} is not a 32-byte hex hash");
    }
    let v: Result<Vec<u8>, _> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16))
        .collect();
    v.map_err(|_| anyhow!("{s:?} is not hex"))?
        .try_into()
        .map_err(|_| anyhow!("{s:?} is not 32 bytes"))
}

async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<(u16, Option<T>)> {
    let resp = reqwest::get(url)
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Ok((status, None));
    }
    let body = resp.bytes().await?;
    let value =
        serde_json::from_slice(&body).with_context(|| format!("{url}: unexpected answer"))?;
    Ok((status, Some(value)))
}

/// The report, starting with `IN LOG`, `NOT IN LOG` or `LOG INCONSISTENT`.
pub fn audit(
    file: &Path,
    server: &str,
    log_key_base58: &str,
    since: Option<&Path>,
    rt: &tokio::runtime::Runtime,
) -> Result<String> {
    let key = divoc_credential::keys::public_key_from_base58(log_key_base58)
        .map_err(|e| anyhow!("--log-key: {e}"))?;
    let json = crate::verify::credential_bytes(file)?.map_err(|e| anyhow!("{e}"))?;
    let cred: serde_json::Value =
        serde_json::from_slice(&json).context("the file is not a JSON credential")?;
    let id = cred["evidence"][0]["certificateId"]
        .as_str()
        .context("the credential has no evidence[0].certificateId")?
        .to_owned();
    let ours = sha256_hex(&json);
    let base = server.trim_end_matches('/');
    rt.block_on(async {
        let (status, head) = get_json::<SignedTreeHead>(&format!("{base}/transparency/v1/sth")).await?;
        let head = head.ok_or_else(|| anyhow!("{base} has no tree head (HTTP {status})"))?;
        let root = head
            .verify(&key)
            .map_err(|e| anyhow!("the server's tree head: {e}"))?;
        let mut report = Vec::new();
        if let Some(path) = since {
            let old: SignedTreeHead = serde_json::from_slice(
                &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            )
            .with_context(|| format!("{}: not a tree head", path.display()))?;
            let old_root = old
                .verify(&key)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            let url = format!(
                "{base}/transparency/v1/consistency?first={}&second={}",
                old.tree_size, head.tree_size
            );
            let (status, answer) = get_json::<ConsistencyAnswer>(&url).await?;
            let answer = answer.ok_or_else(|| anyhow!("{url}: HTTP {status}"))?;
            let proof: Vec<Hash> = answer
                .consistency
                .iter()
                .map(|h| unhex(h))
                .collect::<Result<_>>()?;
            if let Err(e) =
                verify_consistency(old.tree_size, head.tree_size, &old_root, &root, &proof)
            {
                return Ok(format!(
                    "LOG INCONSISTENT: the tree head of size {} does not extend the one of size {} ({e}): the log's history was rewritten",
                    head.tree_size, old.tree_size
                ));
            }
            report.push(format!(
                "the log grew consistently from {} to {} leaves",
                old.tree_size, head.tree_size
            ));
        }
        let url = format!(
            "{base}/transparency/v1/inclusion?certificateId={id}&treeSize={}",
            head.tree_size
        );
        let (status, answer) = get_json::<InclusionAnswer>(&url).await?;
        let Some(answer) = answer else {
            return Ok(format!(
                "NOT IN LOG: certificate {id} is not in the log of {} leaves (HTTP {status})",
                head.tree_size
            ));
        };
        let mut found = None;
        let mut later = Vec::new();
        for e in &answer.entries {
            let path: Vec<Hash> = e.audit_path.iter().map(|h| unhex(h)).collect::<Result<_>>()?;
            if e.entry.index != e.leaf_index || e.entry.certificate_id != id {
                return Ok(format!("NOT IN LOG: the server answered an entry of another leaf or certificate ({})", e.leaf_index));
            }
            if let Err(err) = verify_inclusion(&e.entry.leaf_hash(), e.leaf_index, answer.tree_size, &path, &root) {
                return Ok(format!(
                    "NOT IN LOG: the proof for leaf {} does not verify against the signed root ({err})",
                    e.leaf_index
                ));
            }
            if e.entry.credential_sha256.as_deref() == Some(ours.as_str()) {
                found = Some(e);
            } else if found.is_some() {
                later.push(format!("{} at leaf {}", e.entry.status, e.leaf_index));
            }
        }
        let Some(found) = found else {
            return Ok(format!(
                "NOT IN LOG: the log has certificate {id}, but not this credential (its SHA-256 {ours} was never logged)"
            ));
        };
        let mut line = format!(
            "IN LOG: certificate {id} {} at leaf {} of {} (tree head signed at {} ms, inclusion proof verified)",
            found.entry.status, found.leaf_index, head.tree_size, head.timestamp
        );
        if !later.is_empty() {
            line.push_str(&format!("; logged since: {}", later.join(", ")));
        }
        report.insert(0, line);
        Ok(report.join("\n"))
    })
}

/// `divoc verify --online <server>`: the certificate's status at the issuer's server, asked
/// after the signature checked out: `VALID`, `REVOKED`, `SUSPENDED until <day>` or `UNKNOWN`.
pub fn online_status(id: &str, server: &str, rt: &tokio::runtime::Runtime) -> Result<String> {
    let url = format!(
        "{}/divoc/api/v1/certificate/status/{id}",
        server.trim_end_matches('/')
    );
    rt.block_on(async {
        let resp = reqwest::get(&url)
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let code = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        let body: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{url}: HTTP {code}, not a status answer"))?;
        Ok(match body["status"].as_str() {
            Some("valid") => format!("VALID: certificate {id} is current at {server}"),
            Some("revoked") => format!("REVOKED: certificate {id} was revoked"),
            Some("suspended") => match body["until"].as_str() {
                Some(day) => format!("SUSPENDED until {day}: certificate {id}"),
                None => format!("SUSPENDED until lifted: certificate {id}"),
            },
            _ => format!("UNKNOWN: {server} has no certificate {id} (HTTP {code})"),
        })
    })
}
