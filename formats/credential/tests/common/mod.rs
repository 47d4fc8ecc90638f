//! Shared test helpers: paths to the shared reference data and a deterministic credential
//! generator (no external PRNG crate).

#![allow(dead_code)]

use std::path::PathBuf;

use divoc_credential::credential::{
    Address, CredentialSubject, CredentialVersion, Dose, Evidence, Facility, Verifier,
};
use divoc_credential::{VaccinationCredential, VaccinationNamespace};
use serde_json::{json, Value};

/// `/work/shared` (or wherever `shared/` sits next to the repository).
pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

pub fn read_json(path: PathBuf) -> Value {
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// SplitMix64: tiny, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// What kind of values to generate.
#[derive(Clone, Copy)]
pub struct GenOptions {
    /// Include control characters that RDFC-1.0 and older URDNA2015 implementations (PyLD
    /// 2.0.4, jsonld.js <= 8) escape differently (everything in U+0000..U+001F and U+007F except
    /// TAB, LF, CR).
    pub ambiguous_controls: bool,
    /// Include identifiers that are not absolute IRIs (the processor rejects them; lenient
    /// processors silently drop the triples).
    pub invalid_iris: bool,
    /// Include doubles with negative exponents (0.1): PyLD 2.0.4 formats them as
    /// `1.000000000000000E-01` instead of the canonical `1.0E-1`.
    pub negative_exponents: bool,
}

impl GenOptions {
    /// Everything, for comparing our two paths.
    pub const ALL: GenOptions = GenOptions {
        ambiguous_controls: true,
        invalid_iris: true,
        negative_exponents: true,
    };
    /// Only what PyLD 2.0.4 handles the same way as the specs.
    pub const PYLD: GenOptions = GenOptions {
        ambiguous_controls: false,
        invalid_iris: false,
        negative_exponents: false,
    };
}

const NAMES: &[&str] = &[
    "अनन्या शर्मा",
    "राहुल कुमार सिंह",
    "கார்த்திக் சுப்பிரமணியம்",
    "மீனாட்சி",
    "রবীন্দ্রনাথ ঠাকুর",
    "সুমাইয়া আক্তার",
    "محمد علی خان",
    "عائشہ بی بی",
    "Bhaya Mitra",
    "O'Brien \"Junior\"",
    "ਗੁਰਪ੍ਰੀਤ ਕੌਰ",
    "ಅನಿಲ್ ಕುಮಾರ್",
];

const SCRIPT_RANGES: &[(u32, u32)] = &[
    (0x0900, 0x097F), // Devanagari
    (0x0B80, 0x0BFF), // Tamil
    (0x0980, 0x09FF), // Bengali
    (0x0600, 0x06FF), // Arabic / Urdu
    (0x0041, 0x007A), // Latin-ish ASCII
];

fn random_char(rng: &mut Rng, opts: GenOptions) -> char {
    match rng.below(20) {
        0 => '"',
        1 => '\\',
        2 => '\n',
        3 => '\r',
        4 => '\t',
        5 if opts.ambiguous_controls => {
            let c = *rng.pick(&[0u32, 1, 7, 8, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f]);
            char::from_u32(c).unwrap_or(' ')
        }
        6 => *rng.pick(&[
            '😀', '𝄞', '\u{200d}', '\u{feff}', 'é', '\u{fffd}', '\u{e000}',
        ]),
        7 => ' ',
        _ => {
            let (lo, hi) = *rng.pick(SCRIPT_RANGES);
            char::from_u32(lo + rng.below((hi - lo + 1) as u64) as u32).unwrap_or('x')
        }
    }
}

/// A random string: a real name, an empty string, or random characters mixing scripts and escapes.
pub fn text(rng: &mut Rng, opts: GenOptions) -> String {
    match rng.below(10) {
        0 => String::new(),
        1..=4 => rng.pick(NAMES).to_string(),
        _ => {
            let len = rng.below(24) as usize;
            (0..len).map(|_| random_char(rng, opts)).collect()
        }
    }
}

/// Random values, plus a second generator for the *structure* (which optional members exist,
/// JSON kinds, version, namespace) drawn from a small pool, so that many documents share a shape
/// and templates compiled from one document are reused for others.
struct Gen<'a> {
    values: &'a mut Rng,
    shape: Rng,
    opts: GenOptions,
}

impl Gen<'_> {
    fn present(&mut self, percent_missing: u64) -> bool {
        !self.shape.chance(percent_missing)
    }

    fn opt_text(&mut self) -> Option<String> {
        self.present(15).then(|| text(self.values, self.opts))
    }

    fn opt_pick(&mut self, items: &[&str]) -> Option<String> {
        self.present(10)
            .then(|| self.values.pick(items).to_string())
    }

    fn address(&mut self) -> Option<Address> {
        if !self.present(10) {
            return None;
        }
        Some(Address {
            street_address: self.opt_text(),
            street_address2: self.opt_text(),
            district: self.opt_text(),
            city: self.opt_text(),
            address_region: self.opt_text(),
            address_country: self.opt_pick(&["IN", "LK", "PH", "", "भारत"]),
            postal_code: self
                .present(15)
                .then(|| self.values.below(1_000_000).to_string()),
        })
    }

    fn iri(&mut self, base: &str) -> String {
        let rng = &mut *self.values;
        let digits = rng.below(10_000_000_000);
        match rng.below(100) {
            0 => "schema:compact".into(), // expands through the active `schema` prefix
            1 => format!("vac:{digits}"), // `vac` is not a prefix: stays as is
            2 => format!("_:b{}", rng.below(3)), // blank node: template declines, general handles
            3 => format!("urn:uuid:{digits}-x"),
            4 if self.opts.invalid_iris => format!("{digits}"), // relative: rejected
            5 if self.opts.invalid_iris => String::new(),
            6 => format!("{base}{}", text(rng, GenOptions::PYLD))
                .replace(char::is_whitespace, "")
                .replace(['<', '>', '"', '\\', '\u{feff}'], ""),
            _ => format!("{base}{digits}"),
        }
    }

    fn dose(&mut self) -> Option<Dose> {
        match self.shape.below(10) {
            0 => None,
            1 => Some(Dose::Text(String::new())),
            2 => Some(Dose::Text(self.values.below(4).to_string())),
            _ => Some(Dose::Number(1 + self.values.below(3) as u32)),
        }
    }
}

/// Number of distinct structures [`credential`] draws from.
pub const SHAPES: u64 = 24;

/// A random DIVOC-shaped credential as JSON.
pub fn credential(rng: &mut Rng, opts: GenOptions) -> Value {
    let shape = Rng::new(1000 + rng.below(SHAPES));
    let mut g = Gen {
        values: rng,
        shape,
        opts,
    };
    let version = if g.shape.chance(50) {
        CredentialVersion::V1
    } else {
        CredentialVersion::V2
    };
    let ns = if g.shape.chance(20) {
        VaccinationNamespace {
            v1: "https://divoc.dev/credentials/vaccination/v1".into(),
            v2: "https://divoc.dev/credentials/vaccination/v2".into(),
        }
    } else {
        VaccinationNamespace::default()
    };
    let v2 = version == CredentialVersion::V2;
    let subject = CredentialSubject {
        subject_type: "Person".into(),
        id: g.iri("did:in.gov.uidai.aadhaar:"),
        ref_id: g.opt_text(),
        uhid: None,
        name: g.opt_text(),
        gender: g.opt_pick(&["Male", "Female", "Other", "पुरुष", ""]),
        age: g.present(10).then(|| g.values.below(110).to_string()),
        nationality: g.opt_text(),
        dob: (v2 && g.present(20)).then(|| {
            format!(
                "19{:02}-0{}-1{}",
                g.values.below(100),
                1 + g.values.below(9),
                g.values.below(10)
            )
        }),
        address: g.address(),
    };
    let issuer = g.iri("https://cowin.gov.in/issuer/");
    let issuance_date = format!(
        "2021-0{}-2{}T10:57:57.{:03}Z",
        1 + g.values.below(9),
        g.values.below(10),
        g.values.below(1000)
    );
    let evidence = Evidence {
        id: g.iri("https://cowin.gov.in/vaccine/"),
        info_url: g.opt_pick(&["https://selfregistration.cowin.gov.in/?"]),
        feedback_url: g.opt_pick(&[
            "https://selfregistration.cowin.gov.in/?",
            "https://cowin.gov.in/feedback",
        ]),
        certificate_id: g
            .present(10)
            .then(|| g.values.below(1_000_000_000_000).to_string()),
        types: vec!["Vaccination".into()],
        batch: g.opt_text(),
        vaccine: g.opt_pick(&["COVISHIELD", "COVAXIN", "Sputnik V", ""]),
        manufacturer: g.opt_text(),
        icd11_code: if v2 {
            g.opt_pick(&["XM9QW8", "XM1NL1"])
        } else {
            None
        },
        prophylaxis: if v2 {
            g.opt_pick(&["COVID-19 vaccine, non-replicating viral vector"])
        } else {
            None
        },
        date: g.opt_pick(&["2021-05-02T19:21:18.646Z", "2021-06-12T09:00:00.000Z"]),
        effective_start: g.opt_pick(&["2021-05-02"]),
        effective_until: g.opt_pick(&["2022-05-02"]),
        dose: g.dose(),
        total_doses: g.dose(),
        verifier: g.present(10).then(|| Verifier { name: g.opt_text() }),
        facility: g.present(10).then(|| Facility {
            name: g.opt_text(),
            address: g.address(),
        }),
    };
    let cred = VaccinationCredential {
        context: version.contexts(&ns),
        types: vec![
            "VerifiableCredential".into(),
            "ProofOfVaccinationCredential".into(),
        ],
        credential_subject: subject,
        issuer,
        issuance_date,
        evidence: vec![evidence],
        non_transferable: "true".into(),
        valid_from: None,
        credential_status: Vec::new(),
        proof: None,
    };
    let mut v = cred.to_json().expect("serialize credential");
    // Non-integral and boolean numbers exercise the xsd:double / xsd:boolean rules.
    if g.shape.chance(15) {
        let choices = [json!(2.5), json!(1e21), json!(true), json!(0.1)];
        let n = if opts.negative_exponents { 4 } else { 3 };
        v["evidence"][0]["dose"] = choices[g.shape.below(n) as usize].clone();
    }
    // Blank-node ties: no ids and identical addresses make first-degree hashes collide, so
    // URDNA2015's Hash N-Degree Quads decides the labels.
    if g.shape.chance(15) {
        if let Some(o) = v["credentialSubject"].as_object_mut() {
            o.remove("id");
        }
        if let Some(o) = v["evidence"][0].as_object_mut() {
            o.remove("id");
        }
        let addr = v["credentialSubject"]["address"].clone();
        if !addr.is_null() && v["evidence"][0]["facility"].is_object() {
            v["evidence"][0]["facility"]["address"] = addr;
        }
    }
    v
}

/// Proof options as the signer canonicalizes them.
pub fn proof_options(rng: &mut Rng, context: &Value) -> Value {
    json!({
        "@context": context,
        "type": "Ed25519Signature2018",
        "created": format!("2021-08-27T10:{:02}:57Z", rng.below(60)),
        "verificationMethod": format!("did:india#key-{}", rng.below(5)),
        "proofPurpose": "assertionMethod"
    })
}
