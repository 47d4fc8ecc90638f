//! P-256 issuer keys as JWKs: generation, private key files, the public JWKS served at
//! `<iss>/.well-known/jwks.json`, and RFC 7638 thumbprints (the SHC `kid`).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::FhirError;

/// base64url without padding.
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding (padding or other alphabets are rejected).
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// The members RFC 7638 hashes for an EC key, in lexicographic order; serde keeps field order and
/// serde_json emits no whitespace, which is exactly the required canonical form.
#[derive(Serialize)]
struct EcThumbprintInput<'a> {
    crv: &'a str,
    kty: &'a str,
    x: &'a str,
    y: &'a str,
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC public key given by its JWK members.
pub fn ec_thumbprint(crv: &str, kty: &str, x: &str, y: &str) -> String {
    let input = EcThumbprintInput { crv, kty, x, y };
    // Serializing four borrowed strings cannot fail.
    let json = serde_json::to_vec(&input).unwrap_or_default();
    b64url(&Sha256::digest(&json))
}

/// RFC 7638 thumbprint of any key type, given its required members (a `BTreeMap` iterates in
/// lexicographic order, which is the canonical member order).
pub fn jwk_thumbprint(required_members: &std::collections::BTreeMap<&str, &str>) -> String {
    let json = serde_json::to_vec(required_members).unwrap_or_default();
    b64url(&Sha256::digest(&json))
}

/// A public EC JWK as it appears in a JWKS. Reading ignores members we do not use (`x5c`,
/// `crlVersion`, ...), as RFC 7517 requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// `EC`.
    pub kty: String,
    /// Key id (for SHC: the RFC 7638 thumbprint).
    #[serde(default)]
    pub kid: String,
    /// `sig`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `P-256`.
    pub crv: String,
    /// X coordinate, base64url.
    pub x: String,
    /// Y coordinate, base64url.
    pub y: String,
}

impl PublicJwk {
    /// The RFC 7638 thumbprint of this key.
    pub fn thumbprint(&self) -> String {
        ec_thumbprint(&self.crv, &self.kty, &self.x, &self.y)
    }

    /// The P-256 verifying key, if this is a valid P-256 point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, FhirError> {
        if self.kty != "EC" || self.crv != "P-256" {
            return Err(FhirError::Key(format!(
                "key '{}' is {} {}, expected EC P-256",
                self.kid, self.kty, self.crv
            )));
        }
        let coord = |name: &str, v: &str| -> Result<Vec<u8>, FhirError> {
            match b64url_decode(v) {
                Some(b) if b.len() == 32 => Ok(b),
                _ => Err(FhirError::Key(format!(
                    "key '{}': {name} is not 32 bytes of base64url",
                    self.kid
                ))),
            }
        };
        let mut sec1 = vec![0x04];
        sec1.extend(coord("x", &self.x)?);
        sec1.extend(coord("y", &self.y)?);
        VerifyingKey::from_sec1_bytes(&sec1)
            .map_err(|_| FhirError::Key(format!("key '{}' is not a point on P-256", self.kid)))
    }
}

/// A JWK Set (`{"keys":[...]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<PublicJwk>,
}

impl Jwks {
    /// Parses a JWKS document.
    pub fn from_json(text: &str) -> Result<Self, FhirError> {
        serde_json::from_str(text).map_err(|e| FhirError::Key(format!("JWKS: {e}")))
    }

    /// Reads a JWKS file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, FhirError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| FhirError::Io {
            what: format!("reading JWKS {}", path.display()),
            source,
        })?;
        Self::from_json(&text)
    }
}

/// A private EC JWK file (public members plus `d`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateJwk {
    /// `EC`.
    pub kty: String,
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// `ES256`.
    pub alg: String,
    /// `P-256`.
    pub crv: String,
    /// X coordinate.
    pub x: String,
    /// Y coordinate.
    pub y: String,
    /// Private scalar.
    pub d: String,
}

/// An SHC issuer's ES256 signing key with its `kid`. `Send + Sync`; signing takes `&self`.
#[derive(Clone)]
pub struct IssuerKey {
    signing: SigningKey,
    public: PublicJwk,
}

impl std::fmt::Debug for IssuerKey {
    // Never print the private scalar.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// A fresh random key from the operating system's RNG.
    pub fn generate() -> Result<Self, FhirError> {
        let signing = SigningKey::try_generate()
            .map_err(|e| FhirError::Key(format!("system random generator failed: {e}")))?;
        Ok(Self::from_signing_key(signing))
    }

    /// Wraps an existing signing key.
    pub fn from_signing_key(signing: SigningKey) -> Self {
        let point = signing.verifying_key().to_sec1_point(false);
        let (x, y) = match (point.x(), point.y()) {
            (Some(x), Some(y)) => (b64url(x), b64url(y)),
            // An uncompressed encoding of a valid public key always has both coordinates.
            _ => (String::new(), String::new()),
        };
        let mut public = PublicJwk {
            kty: "EC".into(),
            kid: String::new(),
            key_use: Some("sig".into()),
            alg: Some("ES256".into()),
            crv: "P-256".into(),
            x,
            y,
        };
        public.kid = public.thumbprint();
        IssuerKey { signing, public }
    }

    /// Loads a key from a private JWK; `x`/`y` must match `d`, `kid` must be the thumbprint.
    pub fn from_private_jwk(jwk: &PrivateJwk) -> Result<Self, FhirError> {
        if jwk.kty != "EC" || jwk.crv != "P-256" || jwk.alg != "ES256" {
            return Err(FhirError::Key(format!(
                "private JWK is {} {} {}, expected EC P-256 ES256",
                jwk.kty, jwk.crv, jwk.alg
            )));
        }
        let d = b64url_decode(&jwk.d)
            .filter(|d| d.len() == 32)
            .ok_or_else(|| FhirError::Key("private JWK: d is not 32 bytes of base64url".into()))?;
        let signing = SigningKey::from_slice(&d)
            .map_err(|_| FhirError::Key("private JWK: d is not a valid P-256 scalar".into()))?;
        let key = Self::from_signing_key(signing);
        if key.public.x != jwk.x || key.public.y != jwk.y {
            return Err(FhirError::Key(
                "private JWK: x/y do not belong to d (corrupted key file?)".into(),
            ));
        }
        if key.public.kid != jwk.kid {
            return Err(FhirError::Key(format!(
                "private JWK: kid '{}' is not the RFC 7638 thumbprint '{}'",
                jwk.kid, key.public.kid
            )));
        }
        Ok(key)
    }

    /// Reads a private JWK file written by [`IssuerKey::save_new`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, FhirError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| FhirError::Io {
            what: format!("reading issuer key {}", path.display()),
            source,
        })?;
        let jwk: PrivateJwk = serde_json::from_str(&text).map_err(|e| {
            FhirError::Key(format!("{} is not a private EC JWK: {e}", path.display()))
        })?;
        Self::from_private_jwk(&jwk)
    }

    /// Writes the private JWK to a new file with mode 0600; an existing file is never replaced.
    pub fn save_new(&self, path: impl AsRef<Path>) -> Result<(), FhirError> {
        use std::io::Write;
        let path = path.as_ref();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                FhirError::KeyExists(path.display().to_string())
            } else {
                FhirError::Io {
                    what: format!("creating issuer key {}", path.display()),
                    source,
                }
            }
        })?;
        let json = serde_json::to_vec_pretty(&self.private_jwk())?;
        file.write_all(&json)
            .and_then(|_| file.sync_all())
            .map_err(|source| FhirError::Io {
                what: format!("writing issuer key {}", path.display()),
                source,
            })
    }

    /// The private JWK (handle with care).
    pub fn private_jwk(&self) -> PrivateJwk {
        PrivateJwk {
            kty: self.public.kty.clone(),
            kid: self.public.kid.clone(),
            key_use: "sig".into(),
            alg: "ES256".into(),
            crv: self.public.crv.clone(),
            x: self.public.x.clone(),
            y: self.public.y.clone(),
            d: b64url(&self.signing.to_bytes()),
        }
    }

    /// The `kid` (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// The public JWK (`kty, kid, use, alg, crv, x, y`).
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    /// The JWKS document to serve at `<iss>/.well-known/jwks.json`.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.public.clone()],
        }
    }

    /// ES256 (RFC 6979 deterministic) signature, raw r||s.
    pub fn sign_es256(&self, message: &[u8]) -> [u8; 64] {
        use p256::ecdsa::signature::Signer;
        let sig: p256::ecdsa::Signature = self.signing.sign(message);
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SMART Health Cards spec example issuer's published `kid`s are RFC 7638 thumbprints of
    /// its EC keys.
    #[test]
    fn thumbprint_matches_spec_issuer_kids() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/shc-testdata/spec-issuer-jwks.json"
        ))
        .unwrap();
        let jwks = Jwks::from_json(&text).unwrap();
        assert_eq!(jwks.keys.len(), 2);
        for k in &jwks.keys {
            assert_eq!(k.thumbprint(), k.kid);
            k.verifying_key().unwrap();
        }
    }

    /// RFC 7638 section 3.1 example (RSA key, expected thumbprint quoted from the RFC).
    #[test]
    fn thumbprint_rfc7638_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let members = std::collections::BTreeMap::from([("e", "AQAB"), ("kty", "RSA"), ("n", n)]);
        assert_eq!(
            jwk_thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// The EC form agrees with the generic form.
    #[test]
    fn ec_thumbprint_is_rfc7638() {
        let members = std::collections::BTreeMap::from([
            ("crv", "P-256"),
            ("kty", "EC"),
            ("x", "AA"),
            ("y", "BB"),
        ]);
        assert_eq!(
            ec_thumbprint("P-256", "EC", "AA", "BB"),
            jwk_thumbprint(&members)
        );
    }

    #[test]
    fn thumbprint_canonical_form() {
        // RFC 7638 section 3.2: members in lexicographic order, no whitespace.
        let input = EcThumbprintInput {
            crv: "P-256",
            kty: "EC",
            x: "X",
            y: "Y",
        };
        assert_eq!(
            serde_json::to_string(&input).unwrap(),
            r#"{"crv":"P-256","kty":"EC","x":"X","y":"Y"}"#
        );
    }

    /// RFC 6979 appendix A.2.5 (P-256, SHA-256, message "sample"): deterministic ES256.
    #[test]
    fn es256_is_rfc6979_deterministic() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let d = hex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
        let key = IssuerKey::from_signing_key(SigningKey::from_slice(&d).unwrap());
        let expected = [
            hex("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"),
            hex("F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"),
        ]
        .concat();
        assert_eq!(key.sign_es256(b"sample").to_vec(), expected);
        // Public key from the same appendix.
        let ux = hex("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6");
        assert_eq!(key.public_jwk().x, b64url(&ux));
    }

    #[test]
    fn key_file_roundtrip_mode_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.jwk");
        let key = IssuerKey::generate().unwrap();
        key.save_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = IssuerKey::load(&path).unwrap();
        assert_eq!(loaded.kid(), key.kid());
        assert_eq!(loaded.public_jwk(), key.public_jwk());
        assert!(matches!(
            IssuerKey::generate().unwrap().save_new(&path),
            Err(FhirError::KeyExists(_))
        ));
        // The file was not replaced.
        assert_eq!(IssuerKey::load(&path).unwrap().kid(), key.kid());
    }

    #[test]
    fn tampered_private_jwk_rejected() {
        let key = IssuerKey::generate().unwrap();
        let other = IssuerKey::generate().unwrap();
        let mut jwk = key.private_jwk();
        jwk.x = other.public_jwk().x.clone();
        assert!(IssuerKey::from_private_jwk(&jwk).is_err());
        let mut jwk = key.private_jwk();
        jwk.kid = "nope".into();
        assert!(IssuerKey::from_private_jwk(&jwk).is_err());
    }

    #[test]
    fn jwks_members() {
        let key = IssuerKey::generate().unwrap();
        let v = serde_json::to_value(key.jwks()).unwrap();
        let k = &v["keys"][0];
        let mut names: Vec<_> = k.as_object().unwrap().keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(k["use"], "sig");
        assert_eq!(k["alg"], "ES256");
        assert_eq!(k["crv"], "P-256");
    }
}
