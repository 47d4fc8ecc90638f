//! `divoc keys dsc` and `divoc keys shc`: the P-256 keys of the EU DCC and SMART Health Card
//! issuers. Private keys are written with mode 0600, never over an existing file, never printed.

use std::path::Path;

use anyhow::{bail, Context, Result};
use divoc_hcert::{generate_dsc_csr, generate_self_signed_dsc, CertType, DscOptions};

fn refuse_existing(paths: &[&Path]) -> Result<()> {
    for p in paths {
        // symlink_metadata: a dangling symlink counts as existing too.
        if p.symlink_metadata().is_ok() {
            bail!(
                "{} already exists; keys are never overwritten: move it away or choose another path",
                p.display()
            );
        }
    }
    Ok(())
}

fn make_parent(p: &Path) -> Result<()> {
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// Creates a DSC key plus a self-signed certificate, or a CSR with `csr`.
pub fn create_dsc(
    key_out: &Path,
    out: &Path,
    common_name: &str,
    country: &str,
    validity_days: u32,
    csr: bool,
) -> Result<()> {
    refuse_existing(&[key_out, out])?;
    make_parent(key_out)?;
    make_parent(out)?;
    let opts = DscOptions {
        common_name: common_name.to_owned(),
        country: country.to_owned(),
        organization: None,
        validity_days,
        allowed_types: vec![CertType::Vaccination],
    };
    let generated = if csr {
        generate_dsc_csr(&opts)?
    } else {
        generate_self_signed_dsc(&opts)?
    };
    generated.write(key_out, out)?;
    println!("wrote {} (private key, mode 0600)", key_out.display());
    if csr {
        println!(
            "wrote {} (PKCS#10 request): have your CSCA sign it, then put the certificate in [dcc] certificate",
            out.display()
        );
    } else {
        let signer = divoc_hcert::DscSigner::load(out, key_out)?;
        let kid: String = signer.kid().iter().map(|b| format!("{b:02x}")).collect();
        println!(
            "wrote {} (self-signed DSC, for testing; kid {kid})",
            out.display()
        );
    }
    Ok(())
}

/// Creates a SMART Health Card issuer key and prints the JWKS to publish.
pub fn create_shc_key(out: &Path) -> Result<()> {
    refuse_existing(&[out])?;
    make_parent(out)?;
    let key = divoc_fhir::IssuerKey::generate()?;
    key.save_new(out)?;
    println!("wrote {} (private JWK, mode 0600)", out.display());
    println!(
        "serve this at <iss>/.well-known/jwks.json (divoc serve does):\n{}",
        serde_json::to_string_pretty(&key.jwks())?
    );
    Ok(())
}

/// Creates whichever of the DCC and SHC keys a serve config names and lacks (demo only).
pub fn ensure_demo_keys(plan: &divoc_serve::ServePlan) -> Result<()> {
    if let Some(d) = &plan.cfg.dcc {
        let (cert, key) = (plan.resolve(&d.certificate), plan.resolve(&d.key));
        if !cert.exists() && !key.exists() {
            create_dsc(&key, &cert, "DIVOC demo DSC", "IN", 365, false)?;
        }
    }
    if let Some(s) = &plan.cfg.shc {
        let key = plan.resolve(&s.key);
        if !key.exists() {
            make_parent(&key)?;
            divoc_fhir::IssuerKey::generate()?.save_new(&key)?;
            println!(
                "created SMART Health Card issuer key {} (mode 0600)",
                key.display()
            );
        }
    }
    Ok(())
}
