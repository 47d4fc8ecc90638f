use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;

/// A tiny keep-alive server: checks the request, counts events, answers 200 with a
/// Content-Length body, except every 7th request which gets a chunked 400, and closes the
/// connection after every 5th request it serves so the client has to reconnect.
async fn spawn_server(token: &'static str) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let events = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&events);
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let (events, served) = (Arc::clone(&counter), Arc::clone(&served));
            tokio::spawn(async move {
                let mut sock = BufReader::new(sock);
                let mut per_conn = 0;
                loop {
                    let mut line = String::new();
                    if sock.read_line(&mut line).await.unwrap() == 0 {
                        return;
                    }
                    assert!(
                        line.starts_with("POST /divoc/api/v1/certify HTTP/1.1"),
                        "{line}"
                    );
                    let (mut len, mut auth, mut ctype) = (0usize, false, false);
                    loop {
                        line.clear();
                        sock.read_line(&mut line).await.unwrap();
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        let (k, v) = l.split_once(':').unwrap();
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().unwrap(),
                            "authorization" => auth = v.trim() == format!("Bearer {token}"),
                            "content-type" => ctype = v.trim() == "application/json",
                            _ => {}
                        }
                    }
                    assert!(auth && ctype);
                    let mut body = vec![0; len];
                    sock.read_exact(&mut body).await.unwrap();
                    let arr: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                    for v in &arr {
                        divoc_model::event::parse_request_json(&v.to_string()).unwrap();
                    }
                    let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                    per_conn += 1;
                    let close = per_conn % 5 == 0;
                    let conn_hdr = if close { "Connection: close\r\n" } else { "" };
                    let resp = if n % 7 == 0 {
                        format!("HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n{conn_hdr}\r\n5\r\nerror\r\n0\r\n\r\n")
                    } else {
                        events.fetch_add(arr.len() as u64, Ordering::SeqCst);
                        let body = r#"{"status":1}"#;
                        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{conn_hdr}\r\n{body}", body.len())
                    };
                    sock.get_mut().write_all(resp.as_bytes()).await.unwrap();
                    if close {
                        return;
                    }
                }
            });
        }
    });
    (addr, events)
}

#[tokio::test]
async fn load_against_tiny_server() {
    let (addr, accepted) = spawn_server("s3cret").await;
    let cfg = LoadConfig {
        addr,
        path: "/divoc/api/v1/certify".into(),
        token: "s3cret".into(),
        events_per_request: 10,
        concurrency: 3,
        total_events: 705,
        seed: 9,
    };
    let report = run_load(&cfg).await.unwrap();
    assert_eq!(report.requests, 71);
    let bad = report.status_counts.get(&400).copied().unwrap_or(0);
    assert_eq!(bad, 10, "{report:?}");
    assert_eq!(report.status_counts.get(&200).copied(), Some(61));
    assert_eq!(report.errors, bad);
    assert_eq!(report.events, accepted.load(Ordering::SeqCst));
    assert!(report.events >= 705 - 10 * 10 && report.events < 705);
    assert!(
        report.p50_ms <= report.p99_ms && report.p99_ms <= report.max_ms && report.max_ms > 0.0
    );
    assert!(report.events_per_s > 0.0 && report.elapsed_s > 0.0);
}

#[tokio::test]
async fn refused_connections_are_counted_not_fatal() {
    // Bind then drop to get a port with nothing listening.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = LoadConfig {
        addr,
        path: "/divoc/api/v1/certify".into(),
        token: "t".into(),
        events_per_request: 5,
        concurrency: 2,
        total_events: 20,
        seed: 1,
    };
    let report = run_load(&cfg).await.unwrap();
    assert_eq!((report.requests, report.errors, report.events), (4, 4, 0));
    assert!(report.status_counts.is_empty());
}

#[tokio::test]
async fn rejects_bad_config() {
    let addr = "127.0.0.1:9".parse().unwrap();
    let mut cfg = LoadConfig {
        addr,
        path: "/x".into(),
        token: "a\r\nX-Evil: 1".into(),
        events_per_request: 1,
        concurrency: 1,
        total_events: 1,
        seed: 1,
    };
    assert_eq!(
        run_load(&cfg).await.unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    cfg.token = "ok".into();
    cfg.concurrency = 0;
    assert_eq!(
        run_load(&cfg).await.unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn percentiles_are_nearest_rank() {
    let s: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&s, 0.50), 50.0);
    assert_eq!(percentile(&s, 0.99), 99.0);
    assert_eq!(percentile(&s, 1.0), 100.0);
    assert_eq!(percentile(&[7.0], 0.5), 7.0);
    assert_eq!(percentile(&[], 0.5), 0.0);
}

#[test]
fn bodies_are_json_arrays_of_valid_unique_events() {
    let cfg = LoadConfig {
        addr: "127.0.0.1:1".parse().unwrap(),
        path: "/p".into(),
        token: "t".into(),
        events_per_request: 4,
        concurrency: 1,
        total_events: 10,
        seed: 3,
    };
    let reqs = prepare(&cfg);
    assert_eq!(
        reqs.iter().map(|r| r.events).collect::<Vec<_>>(),
        vec![4, 4, 2]
    );
    let mut keys = std::collections::HashSet::new();
    for r in &reqs {
        let text = std::str::from_utf8(&r.bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let arr: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
        assert_eq!(arr.len() as u64, r.events);
        for v in arr {
            let req = divoc_model::event::parse_request_json(&v.to_string()).unwrap();
            let vac = req.vaccination.unwrap();
            assert!(keys.insert((req.pre_enrollment_code.unwrap(), vac.dose.unwrap())));
        }
    }
}
