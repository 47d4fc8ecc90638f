//! The demo's international formats: for the first issued certificate, a PDF in every shipped
//! language, an EU DCC and a SMART Health Card (with QR images), the FHIR and DDCC bundles, each
//! checked with our own verifiers. Keys are created on first run under `data/keys/`.

use std::path::Path;

use anyhow::{Context, Result};
use divoc_connectors::storage::Storage;

use divoc_serve::formats::{Format, FormatQuery};
use divoc_serve::ServePlan;

pub fn write_samples(
    config_dir: &Path,
    store_url: &str,
    storage: &Storage,
    sample: &Path,
) -> Result<()> {
    let serve_file = config_dir.join("serve.toml");
    let plan = ServePlan::load(&serve_file, &[format!("storage_url={store_url}")])?;
    crate::keys::ensure_demo_keys(&plan)?;
    let formats = divoc_serve::formats::Formats::for_plan(&plan)?;
    let (store, mut indexer) = divoc_serve::open_index(&plan, storage)?;
    indexer.refresh()?;
    drop(indexer);
    // A beneficiary with the most doses shows the history table best.
    let Some(cert) = store.most_doses()? else {
        return Ok(());
    };
    let doses = store.doses(&cert.tenant, &cert.pre_enrollment_code)?;
    let now = chrono::Utc::now().timestamp();
    std::fs::create_dir_all(sample)?;
    let mut written = Vec::new();
    let mut put = |name: String, bytes: Vec<u8>| -> Result<()> {
        std::fs::write(sample.join(&name), bytes)?;
        written.push(name);
        Ok(())
    };
    let (tenant_langs, fallback) = (formats.renderer.tenants(), &plan.cfg.fallback_template);
    let languages: Vec<String> = tenant_langs
        .get(fallback.as_str())
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    for lang in &languages {
        let q = FormatQuery {
            language: Some(lang.clone()),
            ..Default::default()
        };
        let (pdf, _) = formats
            .produce(Format::Pdf, &cert, &doses, &q, now)
            .map_err(|e| anyhow::anyhow!("PDF ({lang}): {}", e.message))?;
        put(format!("certificate-{lang}.pdf"), pdf)?;
    }
    let plain = FormatQuery::default();
    for (fmt, name) in [
        (Format::Shc, "certificate.smart-health-card"),
        (Format::ShcPng, "shc.png"),
        (Format::Fhir, "fhir.json"),
        (Format::Ddcc, "ddcc.json"),
    ] {
        let (bytes, _) = formats
            .produce(fmt, &cert, &doses, &plain, now)
            .map_err(|e| anyhow::anyhow!("{name}: {}", e.message))?;
        put(name.to_owned(), bytes)?;
    }
    // DCC names must be ICAO 9303 transliterations: a non-Latin name needs the registry's.
    let dcc = formats.produce(Format::Dcc, &cert, &doses, &plain, now);
    let dcc_note = match dcc {
        Ok((hc1, _)) => {
            let text = String::from_utf8(hc1.clone()).context("HC1 text")?;
            let (png, _) = formats
                .produce(Format::DccPng, &cert, &doses, &plain, now)
                .map_err(|e| anyhow::anyhow!("dcc.png: {}", e.message))?;
            put("dcc.txt".into(), hc1)?;
            put("dcc.png".into(), png)?;
            let mut trust = divoc_hcert::TrustList::new();
            if let Some(d) = &plan.cfg.dcc {
                let pem = std::fs::read_to_string(plan.resolve(&d.certificate))?;
                trust.add(divoc_hcert::Dsc::from_pem(&pem)?);
            }
            match divoc_hcert::verify_hc1(&text, &trust, now) {
                Ok(_) => "EU DCC: VALID (COSE ES256 with the DSC, not expired)".to_owned(),
                Err(e) => format!("EU DCC: INVALID ({e})"),
            }
        }
        Err(e) => format!("EU DCC: not issued for this name ({})", e.code),
    };
    let shc_note = match &formats.shc {
        Some(issuer) => {
            let file = std::fs::read(sample.join("certificate.smart-health-card"))?;
            let verifier = divoc_fhir::ShcVerifier::new(&issuer.key().jwks(), Some(issuer.iss()));
            match verifier.verify_file(&file, now.max(0) as u64) {
                Ok(cards) => format!(
                    "SMART Health Card: VALID ({} card, ES256, kid = JWK thumbprint)",
                    cards.len()
                ),
                Err(e) => format!("SMART Health Card: INVALID ({e})"),
            }
        }
        None => String::new(),
    };
    println!(
        "\ninternational formats for certificate {} ({} dose(s)) in {}/:\n  {}\n  {dcc_note}\n  {shc_note}",
        cert.certificate_id,
        doses.len(),
        sample.display(),
        written.join(", ")
    );
    Ok(())
}
