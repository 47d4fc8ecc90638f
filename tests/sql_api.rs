//! `POST /api/sql` on `divoc serve`: tokens and access levels, JSON and Arrow IPC answers that
//! agree with the published rows, read-only refusals, the row limit, the dashboard redirect.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const ANALYST: &str = "analyst-token-0123456789";
const ADMIN: &str = "admin-token-0123456789ab";

/// One request on a fresh connection: (status, headers text, body).
fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    accept: Option<&str>,
    body: &str,
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(a) = accept {
        head.push_str(&format!("Accept: {a}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

fn sql(addr: &str, token: Option<&str>, query: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "sql": query }).to_string();
    let (status, _, bytes) = request(addr, "POST", "/api/sql", token, None, &body);
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[test]
fn sql_api_answers_read_only_queries_by_access_level() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    let summary = gen(&input.join("e.ndjson"), 2_000, 5, 0.05, 0.02);
    let (_, valid, _, _) = gen_counts(&summary);
    let config = default_config().display().to_string();
    let out = Command::new(bin())
        .args(with_sets(
            &["run", "--config", &config],
            &dir_sets(tmp.path(), &input),
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let serve = tmp.path().join("serve.toml");
    std::fs::write(
        &serve,
        format!(
            "listen = \"127.0.0.1:0\"\nstorage_url = {}\ntemplates = {}\nfhir_codes = {}\n\n[analytics]\n\
             tokens = [{{ token = \"{ANALYST}\", access = \"analytics\" }}, {{ token = \"{ADMIN}\", access = \"full\" }}]\n\
             max_rows = 50\nqueries = {}\npage = {}\n",
            q(&tmp.path().join("out")),
            q(&repo().join("config")),
            q(&repo().join("config/shc-codes.toml")),
            q(&repo().join("dashboards/queries.toml")),
            q(&repo().join("dashboards/page")),
        ),
    )
    .unwrap();
    let server = start_serve(&serve);
    let addr = server.addr.to_string();

    let count = "SELECT COUNT(*) AS n FROM certificates";
    assert_eq!(sql(&addr, None, count).0, 401);
    assert_eq!(sql(&addr, Some("wrong-token-0123456789"), count).0, 401);
    let (status, answer) = sql(&addr, Some(ANALYST), count);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rows"][0]["n"].as_u64(), Some(valid));
    assert_eq!(answer["columns"][0]["name"], "n");

    // Arrow IPC: the same answer, decoded by arrow's own reader.
    let body = serde_json::json!({ "sql": count }).to_string();
    let (status, head, bytes) = request(
        &addr,
        "POST",
        "/api/sql",
        Some(ANALYST),
        Some("application/vnd.apache.arrow.stream"),
        &body,
    );
    assert_eq!(status, 200);
    assert!(
        head.contains("application/vnd.apache.arrow.stream"),
        "{head}"
    );
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let mut n = 0u64;
    for b in reader {
        let b = b.unwrap();
        n += arrow::util::display::array_value_to_string(b.column(0), 0)
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    assert_eq!(n, valid);

    // Read-only, for every access level.
    for bad in [
        "DROP TABLE certificates",
        "COPY certificates TO '/tmp/x.parquet'",
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc/'",
    ] {
        let (status, answer) = sql(&addr, Some(ADMIN), bad);
        assert_eq!(status, 400, "{bad}: {answer}");
        assert_eq!(answer["error"]["code"], "QUERY_REFUSED", "{bad}");
    }
    // Personal data needs a full-access token.
    let pii = "SELECT recipient_name FROM accepted LIMIT 1";
    assert_eq!(sql(&addr, Some(ANALYST), pii).0, 400);
    let (status, answer) = sql(&addr, Some(ADMIN), pii);
    assert_eq!(status, 200, "{answer}");
    // The row limit cuts and says so.
    let (_, answer) = sql(
        &addr,
        Some(ANALYST),
        "SELECT certificate_id FROM certificates",
    );
    assert_eq!(answer["rows"].as_array().unwrap().len(), 50);
    assert_eq!(answer["truncated"], true);
    // A malformed body names the expected shape.
    let (status, _, bytes) = request(&addr, "POST", "/api/sql", Some(ANALYST), None, "SELECT 1");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&bytes).contains("INVALID_BODY"));
    // The page: /dashboard redirects to the directory URL its relative links need.
    let (status, head, _) = request(&addr, "GET", "/dashboard", None, None, "");
    assert_eq!(status, 308, "{head}");
    let (status, _, page) = request(&addr, "GET", "/dashboard/", None, None, "");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("<html"));
    let (status, _, _) = request(&addr, "GET", "/dashboard/../Cargo.toml", None, None, "");
    assert_eq!(status, 404);

    // `divoc sql` without a query is a shell: statements end with ';', errors do not end it.
    let mut shell = Command::new(bin())
        .args([
            "sql",
            "--storage",
            &tmp.path().join("out").display().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    shell
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"SELECT COUNT(*)\n  AS n FROM certificates;\nDROP TABLE certificates;\nSHOW TABLES;\n",
        )
        .unwrap();
    let out = shell.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("| {valid} ")), "{stdout}");
    assert!(stdout.contains("certificate_counts"), "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only queries are allowed"),
        "the refused statement is reported and the shell goes on"
    );
}
