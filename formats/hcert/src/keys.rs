//! Document Signer Certificates (DSC): P-256 key generation, a self-signed DSC for testing or a
//! PKCS#10 CSR for the country's CSCA, PEM output, and loading a DSC + key back into a signer.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use der::pem::LineEnding;
use der::{DecodePem, Encode, EncodePem};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use sha2::{Digest, Sha256};
use spki::{ObjectIdentifier, SubjectPublicKeyInfo, SubjectPublicKeyInfoRef};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder, RequestBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use crate::error::{HcertError, Result};

/// extendedKeyUsage OIDs the DCC spec defines for DSCs, one per certificate type.
pub const EKU_TEST: &str = "1.3.6.1.4.1.1847.2021.1.1";
/// May sign vaccination certificates.
pub const EKU_VACCINATION: &str = "1.3.6.1.4.1.1847.2021.1.2";
/// May sign recovery certificates.
pub const EKU_RECOVERY: &str = "1.3.6.1.4.1.1847.2021.1.3";

/// Legacy spellings with an extra `.0` arc: early DCC documents and the official test data
/// (case CO6/CO13) use these, so verifiers accept them as well. We never issue them.
pub const EKU_LEGACY: [(&str, CertType); 3] = [
    ("1.3.6.1.4.1.0.1847.2021.1.1", CertType::Test),
    ("1.3.6.1.4.1.0.1847.2021.1.2", CertType::Vaccination),
    ("1.3.6.1.4.1.0.1847.2021.1.3", CertType::Recovery),
];

/// The three DCC certificate types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertType {
    /// `t`.
    Test,
    /// `v`.
    Vaccination,
    /// `r`.
    Recovery,
}

impl CertType {
    /// The payload key (`t`, `v`, `r`).
    pub fn key(self) -> char {
        match self {
            CertType::Test => 't',
            CertType::Vaccination => 'v',
            CertType::Recovery => 'r',
        }
    }

    /// The DSC extendedKeyUsage OID allowing this type.
    pub fn eku_oid(self) -> ObjectIdentifier {
        let s = match self {
            CertType::Test => EKU_TEST,
            CertType::Vaccination => EKU_VACCINATION,
            CertType::Recovery => EKU_RECOVERY,
        };
        ObjectIdentifier::new_unwrap(s)
    }
}

fn key_err(context: &str) -> impl Fn(String) -> HcertError + '_ {
    move |e| HcertError::Key(format!("{context}: {e}"))
}

/// `kid` = first 8 bytes of SHA-256 over the DSC's DER.
pub fn kid_of(cert_der: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(cert_der);
    let mut kid = [0u8; 8];
    kid.copy_from_slice(&digest[..8]);
    kid
}

/// Signs HCERTs with ES256. `Send + Sync`, signing takes `&self`, so one signer serves a rayon pool.
#[derive(Clone)]
pub struct DscSigner {
    key: SigningKey,
    cert_der: Vec<u8>,
    kid: [u8; 8],
}

impl std::fmt::Debug for DscSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DscSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DscSigner {
    /// A signer from a key and its DSC (DER); fails unless the certificate holds this key.
    pub fn new(key: SigningKey, cert_der: Vec<u8>) -> Result<Self> {
        let cert = Certificate::from_der_bytes(&cert_der)?;
        let spki = &cert.tbs_certificate().subject_public_key_info();
        let cert_key = VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
            .map_err(|e| HcertError::Key(format!("DSC does not hold a P-256 key: {e}")))?;
        if &cert_key != key.verifying_key() {
            return Err(HcertError::Key(
                "the private key does not match the DSC's public key; load the key the certificate was issued for".into(),
            ));
        }
        let kid = kid_of(&cert_der);
        Ok(DscSigner { key, cert_der, kid })
    }

    /// A signer from PEM text: a certificate (`BEGIN CERTIFICATE`) and a PKCS#8 key (`BEGIN PRIVATE KEY`).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let cert = Certificate::from_pem(cert_pem.as_bytes())
            .map_err(|e| key_err("DSC PEM")(e.to_string()))?;
        let cert_der = cert
            .to_der()
            .map_err(|e| key_err("DSC DER")(e.to_string()))?;
        let key = load_signing_key_pem(key_pem)?;
        Self::new(key, cert_der)
    }

    /// Reads the DSC PEM and the key PEM from files.
    pub fn load(cert_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> Result<Self> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| HcertError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        Self::from_pem(&read(cert_path.as_ref())?, &read(key_path.as_ref())?)
    }

    /// The kid this signer puts in the protected header.
    pub fn kid(&self) -> [u8; 8] {
        self.kid
    }

    /// The DSC in DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Deterministic (RFC 6979) ES256 signature, raw r||s.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use p256::ecdsa::signature::Signer;
        let sig: Signature = self.key.sign(message);
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        out
    }
}

/// Loads a PKCS#8 PEM P-256 private key.
pub fn load_signing_key_pem(key_pem: &str) -> Result<SigningKey> {
    let secret = p256::SecretKey::from_pkcs8_pem(key_pem).map_err(|e| {
        HcertError::Key(format!(
            "private key is not a PKCS#8 PEM P-256 key ({e}); convert with `openssl pkcs8 -topk8 -nocrypt`"
        ))
    })?;
    Ok(SigningKey::from(secret))
}

/// Parses a DER certificate without panicking on garbage.
trait FromDerBytes: Sized {
    fn from_der_bytes(der: &[u8]) -> Result<Self>;
}

impl FromDerBytes for Certificate {
    fn from_der_bytes(der: &[u8]) -> Result<Self> {
        use der::Decode;
        Certificate::from_der(der)
            .map_err(|e| HcertError::Key(format!("DSC is not a DER X.509 certificate: {e}")))
    }
}

/// What to put in a DSC or CSR.
#[derive(Debug, Clone)]
pub struct DscOptions {
    /// Subject common name, e.g. `DSC 1 MoHFW`.
    pub common_name: String,
    /// Subject country (alpha-2), which must match the CWT `iss`.
    pub country: String,
    /// Optional subject organisation.
    pub organization: Option<String>,
    /// Validity of a self-signed DSC from now.
    pub validity_days: u32,
    /// extendedKeyUsage to include; empty = no EKU extension (allowed to sign every type).
    pub allowed_types: Vec<CertType>,
}

/// A freshly generated key with its self-signed DSC or CSR, as PEM text.
#[derive(Debug, Clone)]
pub struct GeneratedDsc {
    /// PKCS#8 `BEGIN PRIVATE KEY`.
    pub key_pem: String,
    /// `BEGIN CERTIFICATE` (self-signed) or `BEGIN CERTIFICATE REQUEST` (CSR).
    pub pem: String,
}

impl GeneratedDsc {
    /// Writes the key (mode 0600 on Unix) and the certificate/CSR files.
    pub fn write(&self, key_path: impl AsRef<Path>, pem_path: impl AsRef<Path>) -> Result<()> {
        let write = |p: &Path, data: &str, private: bool| -> Result<()> {
            let io = |source| HcertError::Io {
                path: p.display().to_string(),
                source,
            };
            let mut opts = std::fs::OpenOptions::new();
            // Never over an existing file (or through a dangling symlink): mode 0600 applies only
            // to a file this call creates.
            opts.write(true).create_new(true);
            #[cfg(unix)]
            if private {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            #[cfg(not(unix))]
            let _ = private;
            use std::io::Write;
            opts.open(p)
                .and_then(|mut f| f.write_all(data.as_bytes()))
                .map_err(io)
        };
        write(key_path.as_ref(), &self.key_pem, true)?;
        write(pem_path.as_ref(), &self.pem, false)
    }
}

/// Escapes an RFC 4514 attribute value.
fn rdn_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && matches!(c, '#' | ' '))
        {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

fn subject_name(opts: &DscOptions) -> Result<Name> {
    if opts.country.len() != 2 || !opts.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HcertError::Key(format!(
            "DSC country {:?} must be ISO alpha-2",
            opts.country
        )));
    }
    if opts.common_name.trim().is_empty() {
        return Err(HcertError::Key("DSC common name must not be empty".into()));
    }
    let mut dn = format!("CN={}", rdn_escape(&opts.common_name));
    if let Some(o) = &opts.organization {
        dn.push_str(&format!(",O={}", rdn_escape(o)));
    }
    dn.push_str(&format!(",C={}", opts.country));
    Name::from_str(&dn).map_err(|e| HcertError::Key(format!("invalid DSC subject {dn:?}: {e}")))
}

fn generate_key() -> Result<SigningKey> {
    let secret = p256::SecretKey::try_generate_from_rng(&mut getrandom::SysRng)
        .map_err(|e| HcertError::Key(format!("OS random number generator failed: {e}")))?;
    Ok(SigningKey::from(secret))
}

fn key_pem(key: &SigningKey) -> Result<String> {
    let secret = p256::SecretKey::from(key);
    Ok(secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| HcertError::Key(format!("cannot encode key: {e}")))?
        .to_string())
}

/// Certificate profile of a DSC: end entity, digitalSignature, optional DCC extendedKeyUsage.
struct DscProfile {
    subject: Name,
    eku: Vec<ObjectIdentifier>,
}

impl BuilderProfile for DscProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut ext: Vec<Extension> = Vec::new();
        ext.push(
            BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }
            .to_extension(tbs.subject(), &ext)?,
        );
        ext.push(KeyUsage(KeyUsages::DigitalSignature.into()).to_extension(tbs.subject(), &ext)?);
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        ext.push(ski.to_extension(tbs.subject(), &ext)?);
        if !self.eku.is_empty() {
            ext.push(ExtendedKeyUsage(self.eku.clone()).to_extension(tbs.subject(), &ext)?);
        }
        Ok(ext)
    }
}

/// Generates a P-256 key and a self-signed DSC (for testing and closed deployments; production
/// DSCs are signed by the country's CSCA — see [`generate_dsc_csr`]).
pub fn generate_self_signed_dsc(opts: &DscOptions) -> Result<GeneratedDsc> {
    let key = generate_key()?;
    let cert = self_signed_certificate(&key, opts, SystemTime::now())?;
    Ok(GeneratedDsc {
        key_pem: key_pem(&key)?,
        pem: cert
            .to_pem(LineEnding::LF)
            .map_err(|e| HcertError::Key(e.to_string()))?,
    })
}

fn self_signed_certificate(
    key: &SigningKey,
    opts: &DscOptions,
    now: SystemTime,
) -> Result<Certificate> {
    let err = key_err("building the DSC");
    let subject = subject_name(opts)?;
    let profile = DscProfile {
        subject,
        eku: opts.allowed_types.iter().map(|t| t.eku_oid()).collect(),
    };
    // Back-date an hour so verifiers with a slightly slow clock accept a fresh DSC.
    let not_before = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
    let not_after = now + Duration::from_secs(u64::from(opts.validity_days.max(1)) * 86_400);
    let validity = Validity::new(
        Time::try_from(not_before).map_err(|e| err(e.to_string()))?,
        Time::try_from(not_after).map_err(|e| err(e.to_string()))?,
    );
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| err(format!("random serial: {e}")))?;
    serial[0] &= 0x7F; // positive INTEGER
    serial[0] |= 0x01; // and no leading zero byte to strip
    let serial = SerialNumber::new(&serial).map_err(|e| err(e.to_string()))?;
    let spki =
        SubjectPublicKeyInfo::from_key(key.verifying_key()).map_err(|e| err(e.to_string()))?;
    let builder =
        CertificateBuilder::new(profile, serial, validity, spki).map_err(|e| err(e.to_string()))?;
    builder
        .build::<_, DerSignature>(key)
        .map_err(|e| err(e.to_string()))
}

/// Generates a P-256 key and a PKCS#10 certificate request for the country's CSCA.
pub fn generate_dsc_csr(opts: &DscOptions) -> Result<GeneratedDsc> {
    let err = key_err("building the CSR");
    let key = generate_key()?;
    let mut builder = RequestBuilder::new(subject_name(opts)?).map_err(|e| err(e.to_string()))?;
    if !opts.allowed_types.is_empty() {
        let eku = ExtendedKeyUsage(opts.allowed_types.iter().map(|t| t.eku_oid()).collect());
        builder
            .add_extension(&eku)
            .map_err(|e| err(e.to_string()))?;
    }
    let req = builder
        .build::<_, DerSignature>(&key)
        .map_err(|e| err(e.to_string()))?;
    Ok(GeneratedDsc {
        key_pem: key_pem(&key)?,
        pem: req.to_pem(LineEnding::LF).map_err(|e| err(e.to_string()))?,
    })
}
