//! Options of the `http_source` node (`[nodes.<name>]` with `kind = "http_source"`).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use divoc_pipeline::config::ConfigIssue;
use serde::Deserialize;

/// Shortest bearer token accepted (tokens are secrets: 16 characters is the floor, 32+ is better).
pub const MIN_TOKEN_CHARS: usize = 16;

/// One accepted bearer token and the tenant its requests belong to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The secret the client sends as `Authorization: Bearer <token>` (at least 16 characters).
    pub token: String,
    /// Tenant stamped on every event sent with this token (ASCII letters, digits, `_`, `-`, `.`).
    pub tenant: String,
    /// What the token may do: `certify` (certify, update, revoke, suspend, lift, and read its
    /// uploads), `admin` (the same), `read` (upload status and errors only). Default `["certify"]`.
    #[serde(default = "default_roles")]
    pub roles: Vec<TokenRole>,
}

/// A role of an ingest token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    Certify,
    Admin,
    Read,
}

fn default_roles() -> Vec<TokenRole> {
    vec![TokenRole::Certify]
}

/// `http_source`: DIVOC's certify API in front of a write-ahead log.
///
/// ```toml
/// [nodes.ingest]
/// kind = "http_source"
/// listen = "127.0.0.1:8080"
/// tokens = [{ token = "a-long-random-secret-0001", tenant = "in" }]
/// # token_env = "DIVOC_INGEST_TOKEN"   # token for tenant "default" read from the environment at start
/// # max_body_bytes = 8388608           # certify request bodies (JSON)
/// # max_events_per_request = 10000     # elements per certify request
/// # max_csv_bytes = 67108864           # bulk CSV uploads
/// # max_csv_rows = 1000000            # data rows per bulk CSV upload
/// # wal_segment_bytes = 67108864       # roll the WAL to a new segment after this many bytes
/// # fsync = true                       # answer 200 only after the WAL is on disk
/// # max_uploads_retained = 100000      # uploads kept queryable under /certify/uploads
/// ```
///
/// Authentication is deny-by-default: with no token configured every request is answered 401.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// Socket address to listen on, e.g. `127.0.0.1:8080` (`0.0.0.0:8080` for all interfaces).
    pub listen: String,
    /// Accepted bearer tokens, each mapped to a tenant.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Name of an environment variable holding one more token, for tenant `default`.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Largest certify (JSON) request body, in bytes; larger bodies get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Most elements in one certify request; more get 400 `TOO_MANY_EVENTS`.
    #[serde(default = "default_max_events")]
    pub max_events_per_request: usize,
    /// Largest bulk CSV upload, in bytes; larger uploads get 413.
    #[serde(default = "default_max_csv_bytes")]
    pub max_csv_bytes: u64,
    /// Most data rows in one bulk CSV upload; more get 400 `TOO_MANY_ROWS`.
    #[serde(default = "default_max_csv_rows")]
    pub max_csv_rows: usize,
    /// Size after which the write-ahead log starts a new segment file.
    #[serde(default = "default_wal_segment_bytes")]
    pub wal_segment_bytes: u64,
    /// fsync the WAL before answering 200 (turn off only for benchmarks: a crash loses accepted events).
    #[serde(default = "default_fsync")]
    pub fsync: bool,
    /// How many uploads stay queryable (oldest are forgotten first).
    #[serde(default = "default_max_uploads")]
    pub max_uploads_retained: usize,
}

fn default_max_body_bytes() -> u64 {
    8 << 20
}
fn default_max_events() -> usize {
    10_000
}
fn default_max_csv_bytes() -> u64 {
    64 << 20
}
fn default_max_csv_rows() -> usize {
    1_000_000
}
fn default_wal_segment_bytes() -> u64 {
    64 << 20
}
fn default_fsync() -> bool {
    true
}
fn default_max_uploads() -> usize {
    100_000
}

/// Largest in-memory body we agree to buffer (also caps the configurable limits).
const HARD_MAX_BODY: u64 = 1 << 30;

fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl HttpSourceConfig {
    /// Validates the options without side effects (the token environment variable is not read).
    pub fn validate(&self) -> Result<(), ConfigIssue> {
        self.listen.parse::<SocketAddr>().map_err(|e| {
            ConfigIssue::new(
                "listen",
                format!("{:?} is not a socket address: {e}", self.listen),
                "use IP:port, e.g. \"127.0.0.1:8080\" or \"0.0.0.0:8080\"",
            )
        })?;
        let mut seen = BTreeSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            if t.token.trim().is_empty() {
                return Err(ConfigIssue::new(
                    format!("tokens[{i}].token"),
                    "token is empty",
                    "set a random secret of at least 16 characters (e.g. `openssl rand -hex 24`)",
                ));
            }
            if t.token.chars().count() < MIN_TOKEN_CHARS {
                return Err(ConfigIssue::new(
                    format!("tokens[{i}].token"),
                    format!("token is shorter than {MIN_TOKEN_CHARS} characters"),
                    "use a random secret of at least 16 characters (e.g. `openssl rand -hex 24`)",
                ));
            }
            if t.token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigIssue::new(
                    format!("tokens[{i}].token"),
                    "token contains whitespace or control characters",
                    "use printable characters only, e.g. hex or base64url",
                ));
            }
            if !seen.insert(t.token.as_str()) {
                return Err(ConfigIssue::new(
                    format!("tokens[{i}].token"),
                    "the same token is listed twice",
                    "give every tenant its own token",
                ));
            }
            if !valid_tenant(&t.tenant) {
                return Err(ConfigIssue::new(
                    format!("tokens[{i}].tenant"),
                    format!("tenant {:?} is empty, longer than 64 characters or has other characters than ASCII letters, digits, '_', '-', '.'", divoc_model::event::truncate(&t.tenant, 40)),
                    "use a short identifier such as \"in\" or \"state-ka\"",
                ));
            }
        }
        if let Some(name) = &self.token_env {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(ConfigIssue::new(
                    "token_env",
                    "not a valid environment variable name",
                    "name a variable such as \"DIVOC_INGEST_TOKEN\" or remove the key",
                ));
            }
        }
        let positive: [(&str, u64); 5] = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_csv_bytes", self.max_csv_bytes),
            ("wal_segment_bytes", self.wal_segment_bytes),
            ("max_events_per_request", self.max_events_per_request as u64),
            ("max_csv_rows", self.max_csv_rows as u64),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(ConfigIssue::new(
                    key,
                    "must be greater than 0",
                    "remove the key to use the default",
                ));
            }
        }
        for (key, v) in [
            ("max_body_bytes", self.max_body_bytes),
            ("max_csv_bytes", self.max_csv_bytes),
        ] {
            if v > HARD_MAX_BODY {
                return Err(ConfigIssue::new(
                    key,
                    format!("{v} bytes is more than the 1 GiB a request may buffer"),
                    "use at most 1073741824 (the defaults are 8 MiB for JSON and 64 MiB for CSV)",
                ));
            }
        }
        if self.max_uploads_retained == 0 {
            return Err(ConfigIssue::new(
                "max_uploads_retained",
                "must be greater than 0",
                "remove the key to use the default (100000)",
            ));
        }
        Ok(())
    }

    /// All (token, tenant) pairs, reading `token_env` now. Errors name the key.
    pub(crate) fn resolved_tokens(
        &self,
    ) -> Result<Vec<(String, String, Vec<TokenRole>)>, ConfigIssue> {
        let mut out: Vec<(String, String, Vec<TokenRole>)> = self
            .tokens
            .iter()
            .map(|t| (t.token.clone(), t.tenant.clone(), t.roles.clone()))
            .collect();
        if let Some(name) = &self.token_env {
            let token = std::env::var(name).map_err(|_| {
                ConfigIssue::new(
                    "token_env",
                    format!("environment variable {name} is not set or not UTF-8"),
                    "export the variable before starting, or remove token_env",
                )
            })?;
            let token = token.trim().to_owned();
            if token.chars().count() < MIN_TOKEN_CHARS
                || token.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(ConfigIssue::new(
                    "token_env",
                    format!("the token in {name} is shorter than {MIN_TOKEN_CHARS} characters or has whitespace"),
                    "store a random secret of at least 16 printable characters",
                ));
            }
            if out.iter().any(|(t, _, _)| *t == token) {
                return Err(ConfigIssue::new(
                    "token_env",
                    format!("the token in {name} is also listed under tokens"),
                    "give every tenant its own token",
                ));
            }
            out.push((token, "default".to_owned(), default_roles()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HttpSourceConfig {
        HttpSourceConfig {
            listen: "127.0.0.1:0".into(),
            tokens: vec![TokenConfig {
                roles: default_roles(),
                token: "0123456789abcdef".into(),
                tenant: "in".into(),
            }],
            token_env: None,
            max_body_bytes: 1,
            max_events_per_request: 1,
            max_csv_bytes: 1,
            max_csv_rows: 1,
            wal_segment_bytes: 1,
            fsync: true,
            max_uploads_retained: 1,
        }
    }

    #[test]
    fn check_names_the_key() {
        assert!(base().validate().is_ok());
        let mut c = base();
        c.listen = "localhost".into();
        assert_eq!(c.validate().unwrap_err().key, "listen");
        let mut c = base();
        c.tokens[0].token = "short".into();
        assert_eq!(c.validate().unwrap_err().key, "tokens[0].token");
        let mut c = base();
        c.tokens[0].tenant = "a b".into();
        assert_eq!(c.validate().unwrap_err().key, "tokens[0].tenant");
        let mut c = base();
        c.max_csv_bytes = 0;
        assert_eq!(c.validate().unwrap_err().key, "max_csv_bytes");
        let mut c = base();
        c.tokens.push(c.tokens[0].clone());
        assert_eq!(c.validate().unwrap_err().key, "tokens[1].token");
    }

    #[test]
    fn defaults_apply_and_unknown_keys_fail() {
        let c: HttpSourceConfig = toml::from_str("listen = \"127.0.0.1:8080\"").unwrap();
        assert_eq!(c.max_body_bytes, 8 << 20);
        assert_eq!(c.max_events_per_request, 10_000);
        assert_eq!(c.max_csv_bytes, 64 << 20);
        assert_eq!(c.wal_segment_bytes, 64 << 20);
        assert!(c.fsync);
        assert!(c.tokens.is_empty());
        assert!(
            toml::from_str::<HttpSourceConfig>("listen = \"127.0.0.1:8080\"\nfsycn = false")
                .is_err()
        );
    }
}
