//! Issue -> decode -> verify round trips with our own verifier, tampering, key handling, and
//! payload construction from pipeline-shaped credentials.

mod common;

use common::*;
use divoc_credential::credential::{CredentialVersion, Dose};
use divoc_hcert::{
    base45, cose, decode_hc1, encode_hc1, verify_hc1, CertType, CoseSign1, DccConfig, DccHolder,
    Dsc, DscSigner, HcertError, NameParts, Stage, TrustList,
};

/// Issue time: now, so it falls inside the freshly generated DSC's validity.
static IAT: std::sync::LazyLock<i64> = std::sync::LazyLock::new(now);

fn trust(g: &divoc_hcert::GeneratedDsc) -> TrustList {
    let mut t = TrustList::new();
    t.add(Dsc::from_pem(&g.pem).unwrap());
    t
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn issued_certificates_verify_and_carry_the_credential_data() {
    let g = dsc(vec![]);
    let issuer = issuer(&g);
    let trust = trust(&g);
    let cred = credential(
        CredentialVersion::V2,
        "Anna Lövström",
        "COVISHIELD",
        "Serum Institute of India",
        (2, 2),
        "123456789012",
        "2021-08-27T10:57:57.237Z",
    );
    let holder = DccHolder::from_credential_name(&cred).unwrap();
    let issued = issuer.issue(&cred, &holder, now()).unwrap();
    assert!(issued.hc1.starts_with("HC1:"));
    let verified = verify_hc1(&issued.hc1, &trust, now() + 60).unwrap();
    assert_eq!(verified.cert_type, CertType::Vaccination);
    let dcc = &verified.claims.dcc;
    // Expected values come from the credential and the brief, not from our encoder.
    assert_eq!(dcc["ver"], "1.3.0");
    assert_eq!(dcc["nam"]["fn"], "Lövström");
    assert_eq!(dcc["nam"]["fnt"], "LOEVSTROEM");
    assert_eq!(dcc["nam"]["gn"], "Anna");
    assert_eq!(dcc["nam"]["gnt"], "ANNA");
    assert_eq!(dcc["dob"], "1976-03-09");
    let v = &dcc["v"][0];
    assert_eq!(v["tg"], "840539006");
    assert_eq!(v["vp"], "J07BX03");
    assert_eq!(v["mp"], "Covishield");
    assert_eq!(v["ma"], "ORG-100001981");
    assert_eq!(v["dn"], 2);
    assert_eq!(v["sd"], 2);
    assert_eq!(v["dt"], "2021-08-27");
    assert_eq!(v["co"], "IN");
    assert_eq!(v["is"], "Ministry of Health and Family Welfare");
    assert_eq!(v["ci"], "URN:UVCI:01:IN:123456789012");
    assert_eq!(verified.claims.iss.as_deref(), Some("IN"));
    assert_eq!(verified.claims.exp - verified.claims.iat, 365 * 86_400);
    // And the typed payload survives the trip.
    let back: divoc_hcert::DccPayload = serde_json::from_value(dcc.clone()).unwrap();
    assert_eq!(back, issued.payload);
}

#[test]
fn v1_credentials_get_an_empty_dob_unless_given() {
    let g = dsc(vec![]);
    let issuer = issuer(&g);
    let cred = credential(
        CredentialVersion::V1,
        "Bhaya Mitra",
        "Covaxin",
        "Bharat Biotech",
        (1, 2),
        "999",
        "2021-05-01T09:00:00.000Z",
    );
    assert_eq!(cred.credential_subject.dob, None);
    let holder = DccHolder::from_credential_name(&cred).unwrap();
    let issued = issuer.issue(&cred, &holder, *IAT).unwrap();
    assert_eq!(issued.payload.dob, "");
    let with_dob = issuer
        .issue(&cred, &holder.clone().with_dob("1995"), *IAT)
        .unwrap();
    assert_eq!(with_dob.payload.dob, "1995");
    assert!(issuer
        .issue(&cred, &holder.with_dob("95-01-01"), *IAT)
        .is_err());
}

#[test]
fn replay_gives_identical_bytes() {
    let g = dsc(vec![]);
    let issuer = issuer(&g);
    let cred = credential(
        CredentialVersion::V2,
        "Ravi Kumar",
        "Covishield",
        "SII",
        (1, 2),
        "42",
        "2021-06-01T00:00:00Z",
    );
    let holder = DccHolder::from_credential_name(&cred).unwrap();
    let a = issuer.issue(&cred, &holder, *IAT).unwrap().hc1;
    let b = issuer.issue(&cred, &holder, *IAT).unwrap().hc1;
    assert_eq!(a, b, "RFC 6979 signing must be deterministic");
}

#[test]
fn tampering_and_wrong_context_fail_at_the_right_stage() {
    let g = dsc(vec![]);
    let issuer = issuer(&g);
    let trust = trust(&g);
    let cred = credential(
        CredentialVersion::V2,
        "Ravi Kumar",
        "Covishield",
        "SII",
        (1, 2),
        "42",
        "2021-06-01T00:00:00Z",
    );
    let holder = DccHolder::from_credential_name(&cred).unwrap();
    let issued = issuer.issue(&cred, &holder, *IAT).unwrap();
    let clock = *IAT + 10;
    verify_hc1(&issued.hc1, &trust, clock).unwrap();

    // Change the payload (dose 1 -> 3) and re-wrap it with the original signature.
    let decoded = decode_hc1(&issued.hc1).unwrap();
    let mut payload = issued.payload.clone();
    payload.v[0].dn = 3;
    let claims = cose::CwtClaims::encode(
        "IN",
        *IAT,
        issued.exp,
        ciborium::Value::serialized(&payload).unwrap(),
    )
    .unwrap();
    let forged = CoseSign1::encode_tagged(
        decoded.cose.protected_bytes.clone(),
        claims,
        decoded.cose.signature.clone(),
    )
    .unwrap();
    let err = verify_hc1(&encode_hc1(&forged), &trust, clock).unwrap_err();
    assert!(matches!(err, HcertError::BadSignature), "{err}");

    // Flip one bit of the signature.
    let mut sig = decoded.cose.signature.clone();
    sig[10] ^= 1;
    let bad_sig = CoseSign1::encode_tagged(
        decoded.cose.protected_bytes.clone(),
        decoded.cose.payload.clone(),
        sig,
    )
    .unwrap();
    assert!(matches!(
        verify_hc1(&encode_hc1(&bad_sig), &trust, clock),
        Err(HcertError::BadSignature)
    ));

    // Transport damage.
    let mut chars: Vec<char> = issued.hc1.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let damaged: String = chars.into_iter().collect();
    assert!(verify_hc1(&damaged, &trust, clock).is_err());
    assert_eq!(
        verify_hc1(&issued.hc1.replacen("HC1:", "HC2:", 1), &trust, clock)
            .unwrap_err()
            .stage(),
        Stage::Unprefix
    );
    assert_eq!(
        verify_hc1(&format!("{}a", issued.hc1), &trust, clock)
            .unwrap_err()
            .stage(),
        Stage::Base45
    );
    let raw_cose = format!("HC1:{}", base45::encode(&forged));
    assert_eq!(
        verify_hc1(&raw_cose, &trust, clock).unwrap_err().stage(),
        Stage::Decompress
    );

    // Another DSC is not trusted.
    let other = trust_of_other();
    assert!(matches!(
        verify_hc1(&issued.hc1, &other, clock),
        Err(HcertError::UnknownKid { .. })
    ));

    // Clock outside iat..=exp.
    assert_eq!(
        verify_hc1(&issued.hc1, &trust, *IAT - 1)
            .unwrap_err()
            .stage(),
        Stage::Expiration
    );
    assert_eq!(
        verify_hc1(&issued.hc1, &trust, issued.exp + 1)
            .unwrap_err()
            .stage(),
        Stage::Expiration
    );
}

fn trust_of_other() -> TrustList {
    trust(&dsc(vec![]))
}

#[test]
fn key_usage_restricted_dsc() {
    let test_only = dsc(vec![CertType::Test]);
    let vacc = dsc(vec![CertType::Vaccination, CertType::Recovery]);
    let cred = credential(
        CredentialVersion::V2,
        "Ravi Kumar",
        "Covishield",
        "SII",
        (1, 2),
        "42",
        "2021-06-01T00:00:00Z",
    );
    let holder = DccHolder::from_credential_name(&cred).unwrap();
    let clock = now() + 5;
    let hc1 = issuer(&test_only).issue(&cred, &holder, now()).unwrap().hc1;
    assert!(matches!(
        verify_hc1(&hc1, &trust(&test_only), clock),
        Err(HcertError::KeyUsage { cert_type: 'v' })
    ));
    let hc1 = issuer(&vacc).issue(&cred, &holder, now()).unwrap().hc1;
    verify_hc1(&hc1, &trust(&vacc), clock).unwrap();
    // The DSC's own validity is checked too (self-signed DSCs are valid for 730 days).
    assert_eq!(
        verify_hc1(&hc1, &trust(&vacc), clock + 800 * 86_400)
            .unwrap_err()
            .stage(),
        Stage::Expiration
    );
}

#[test]
fn signer_checks_key_matches_certificate() {
    let a = dsc(vec![]);
    let b = dsc(vec![]);
    let err = DscSigner::from_pem(&a.pem, &b.key_pem).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    a.write(dir.path().join("dsc.key"), dir.path().join("dsc.pem"))
        .unwrap();
    let s = DscSigner::load(dir.path().join("dsc.pem"), dir.path().join("dsc.key")).unwrap();
    assert_eq!(s.kid(), Dsc::from_pem(&a.pem).unwrap().kid);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("dsc.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "private key must not be group/world readable"
        );
    }
    assert!(DscSigner::from_pem("garbage", &a.key_pem).is_err());
    assert!(DscSigner::from_pem(&a.pem, "garbage").is_err());
}

#[test]
fn csr_is_a_valid_pkcs10_request() {
    use der::DecodePem;
    let g = divoc_hcert::generate_dsc_csr(&divoc_hcert::DscOptions {
        common_name: "DSC 7".into(),
        country: "IN".into(),
        organization: None,
        validity_days: 365,
        allowed_types: vec![CertType::Vaccination],
    })
    .unwrap();
    assert!(g.pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    let req = x509_cert::request::CertReq::from_pem(g.pem.as_bytes()).unwrap();
    assert_eq!(req.info.subject.to_string(), "CN=DSC 7,C=IN");
    assert!(divoc_hcert::keys::load_signing_key_pem(&g.key_pem).is_ok());
}

#[test]
fn divoc_vector_credential_needs_mappable_vaccine_and_doses() {
    let g = dsc(vec![]);
    let issuer = issuer(&g);
    let mut cred = divoc_vector();
    let holder = DccHolder::from_credential_name(&cred).unwrap();
    assert_eq!(holder.family_t, "MITRA");
    assert_eq!(holder.given_t.as_deref(), Some("BHAYA"));
    // "CoVax" by "COVPharma" is not a real vaccine: no value-set entry.
    assert!(matches!(
        issuer.issue(&cred, &holder, *IAT),
        Err(HcertError::UnknownVaccine { .. })
    ));
    cred.evidence[0].vaccine = Some("COVISHIELD".into());
    // The vector's doses are "": the DCC needs positive integers.
    let err = issuer.issue(&cred, &holder, *IAT).unwrap_err();
    assert!(err.to_string().contains("evidence[0].dose"), "{err}");
    cred.evidence[0].dose = Some(Dose::Text("1".into()));
    cred.evidence[0].total_doses = Some(Dose::Number(2));
    cred.evidence[0].certificate_id = Some("10101010".into());
    let issued = issuer.issue(&cred, &holder, *IAT).unwrap();
    assert_eq!(
        issued.payload.dob, "",
        "v1 credential: age only, so dob is empty"
    );
    assert_eq!(issued.payload.v[0].dt, "2020-12-02");
    assert_eq!(issued.payload.v[0].dn, 1);
    assert_eq!(issued.payload.v[0].ci, "URN:UVCI:01:IN:10101010");
    verify_hc1(&issued.hc1, &trust(&g), *IAT + 1).unwrap();
}

#[test]
fn names_non_latin_and_explicit_transliterations() {
    let g = dsc(vec![]);
    let issuer = issuer(&g);
    let cred = credential(
        CredentialVersion::V2,
        "भय मित्र",
        "Covishield",
        "SII",
        (1, 2),
        "77",
        "2021-06-01T00:00:00Z",
    );
    assert!(matches!(
        DccHolder::from_credential_name(&cred),
        Err(HcertError::NonLatinName { .. })
    ));
    let parts = NameParts {
        family: "मित्र".into(),
        given: Some("भय".into()),
    };
    assert!(DccHolder::new(parts.clone(), "Mitra".into(), None).is_err());
    let holder = DccHolder::new(parts, "MITRA".into(), Some("BHAYA".into())).unwrap();
    let issued = issuer.issue(&cred, &holder, *IAT).unwrap();
    let dcc = verify_hc1(&issued.hc1, &trust(&g), *IAT + 1)
        .unwrap()
        .claims
        .dcc;
    assert_eq!(dcc["nam"]["fn"], "मित्र");
    assert_eq!(dcc["nam"]["fnt"], "MITRA");
}

#[test]
fn vaccine_names_map_to_eu_value_sets() {
    let cfg = config();
    // (DIVOC vaccine name, expected mp, vp, ma) — codes from the EU value sets / the brief.
    let cases = [
        ("COVISHIELD", "Covishield", "J07BX03", "ORG-100001981"),
        (
            "Covishield (ChAdOx1 nCoV-19)",
            "Covishield",
            "J07BX03",
            "ORG-100001981",
        ),
        ("COVAXIN", "Covaxin", "J07BX03", "Bharat-Biotech"),
        ("Comirnaty", "EU/1/20/1528", "1119349007", "ORG-100030215"),
        (
            "Pfizer-BioNTech COVID-19 Vaccine",
            "EU/1/20/1528",
            "1119349007",
            "ORG-100030215",
        ),
        ("Moderna", "EU/1/20/1507", "1119349007", "ORG-100031184"),
        ("Vaxzevria", "EU/1/21/1529", "J07BX03", "ORG-100001699"),
        ("Janssen", "EU/1/20/1525", "J07BX03", "ORG-100001417"),
        (
            "Sputnik V",
            "Sputnik-V",
            "J07BX03",
            "Gamaleya-Research-Institute",
        ),
        ("CoronaVac", "CoronaVac", "J07BX03", "Sinovac-Biotech"),
        (
            "Sinopharm BBIBP-CorV",
            "BBIBP-CorV",
            "J07BX03",
            "ORG-100020693",
        ),
        ("COVOVAX", "Covovax", "1119305005", "ORG-100001981"),
        ("Novavax", "EU/1/21/1618", "1119305005", "ORG-100032020"),
        ("CORBEVAX", "Corbevax", "1119305005", "Biological-E"),
        ("ZyCoV-D", "ZyCoV-D", "J07BX03", "Zydus-Cadila"),
    ];
    for (name, mp, vp, ma) in cases {
        let m = cfg
            .vaccine_for(name, "")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (m.mp.as_str(), m.vp.as_str(), m.ma.as_str()),
            (mp, vp, ma),
            "{name}"
        );
    }
    assert!(cfg.vaccine_for("CoVax", "COVPharma").is_err());
    assert_eq!(
        cfg.vaccine_for("", "Moderna Biotech").unwrap().mp,
        "EU/1/20/1507"
    );
}

#[test]
fn config_rejects_unknown_fields_and_bad_values() {
    let text = std::fs::read_to_string(CONFIG).unwrap();
    assert!(DccConfig::from_toml(
        &text.replace("validity_days = 365", "validity_days = 365\nvalidity = 1"),
        "t"
    )
    .is_err());
    assert!(
        DccConfig::from_toml(&text.replace("country = \"IN\"", "country = \"IND\""), "t").is_err()
    );
    assert!(
        DccConfig::from_toml(&text.replace("\"URN:UVCI:01:IN:\"", "\"UVCI-IN\""), "t").is_err()
    );
    assert!(DccConfig::load("/nonexistent/dcc.toml").is_err());
}

#[test]
fn hostile_input_never_panics() {
    let g = dsc(vec![]);
    let issuer = issuer(&g);
    let trust = trust(&g);
    let cred = credential(
        CredentialVersion::V2,
        "Ravi Kumar",
        "Covishield",
        "SII",
        (1, 2),
        "42",
        "2021-06-01T00:00:00Z",
    );
    let holder = DccHolder::from_credential_name(&cred).unwrap();
    let issued = issuer.issue(&cred, &holder, *IAT).unwrap();
    let cose_bytes = divoc_hcert::decompress(&base45::decode(&issued.hc1[4..]).unwrap()).unwrap();
    // Every single-byte corruption and every truncation of the COSE message must be rejected
    // with an error, never a panic and never a success.
    for i in 0..cose_bytes.len() {
        for x in [0x01u8, 0x80, 0xFF] {
            let mut m = cose_bytes.clone();
            m[i] ^= x;
            assert!(
                verify_hc1(&encode_hc1(&m), &trust, *IAT + 1).is_err(),
                "flip {x:#x} at {i} accepted"
            );
        }
        assert!(verify_hc1(&encode_hc1(&cose_bytes[..i]), &trust, *IAT + 1).is_err());
    }
    for text in [
        "", "HC1:", "HC1:é", "HC1:%%%", "HC1:00", "HC1:NCF", "hc1:ABC",
    ] {
        assert!(verify_hc1(text, &trust, 0).is_err(), "{text:?}");
    }
    // A zlib bomb stops at the size limit.
    let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; 10 << 20], 9);
    let err = verify_hc1(&format!("HC1:{}", base45::encode(&bomb)), &trust, 0).unwrap_err();
    assert_eq!(err.stage(), Stage::Decompress);
}

#[test]
fn issuing_and_verifying_types_are_thread_safe() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<divoc_hcert::HcertIssuer>();
    send_sync::<TrustList>();
    send_sync::<DscSigner>();
}

#[test]
fn hand_built_payloads_are_validated() {
    let g = dsc(vec![]);
    let issuer = issuer(&g);
    let cred = credential(
        CredentialVersion::V2,
        "Ravi Kumar",
        "Covishield",
        "SII",
        (1, 2),
        "42",
        "2021-06-01T00:00:00Z",
    );
    let good = divoc_hcert::build_payload(
        &cred,
        &DccHolder::from_credential_name(&cred).unwrap(),
        issuer.config(),
    )
    .unwrap();
    let mut p = good.clone();
    p.nam.family_t = "kumar".into();
    assert!(issuer.issue_payload(p, *IAT).is_err());
    let mut p = good.clone();
    p.v.push(p.v[0].clone());
    assert!(issuer.issue_payload(p, *IAT).is_err());
    let mut p = good.clone();
    p.v[0].dt = "2021-06-31".into();
    assert!(issuer.issue_payload(p, *IAT).is_err());
    issuer.issue_payload(good, *IAT).unwrap();
}
