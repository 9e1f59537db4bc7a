//! HTTPS end to end: the backend and the agent serve TLS with a certificate generated
//! here, the agent registers online enrolments with the backend over TLS, trusting only
//! that certificate, and a client enrols over TLS.
#![cfg(all(feature = "tls", feature = "backend"))]

use std::io::{Read, Write};
use std::path::PathBuf;

use crate::common::server::Server;
use crate::common::{self, fixture};
use ureq::tls::{PemItem, RootCerts, TlsConfig};

/// A self-signed certificate for localhost and 127.0.0.1: (certificate, key) PEM files.
fn certificate() -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

/// A client trusting only the certificate in `cert`.
fn client(cert: &PathBuf) -> ureq::Agent {
    let pem = std::fs::read(cert).unwrap();
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item.unwrap() {
            PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&certs))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .into()
}

#[test]
fn enrolment_and_registration_run_over_tls() {
    let (cert, key) = certificate();
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let agents = common::agent_public_key();
    let db = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tls/backend.db");
    let _ = std::fs::remove_file(&db);
    let tls = [("TLS_CERT_FILE", cert_s), ("TLS_KEY_FILE", key_s)];
    let backend = Server::spawn(
        "backend",
        &[
            ("BACKEND_API_KEY", "tls-key"),
            ("TRUSTED_AGENT_KEYS", &agents),
            ("DATABASE", db.to_str().unwrap()),
            tls[0],
            tls[1],
        ],
    );
    let backend_url = format!("https://localhost:{}", backend.addr.port());
    let agent = Server::agent(&[
        ("AUTH_SERVER_URL", &backend_url),
        ("AUTH_SERVER_API_KEY", "tls-key"),
        ("AUTH_SERVER_CA_FILE", cert_s),
        tls[0],
        tls[1],
    ]);
    let https = client(&cert);
    let url = format!("https://localhost:{}", agent.addr.port());
    let health = https.get(format!("{url}/health-check")).call().unwrap();
    assert_eq!(health.status(), 200);

    let mut r = https
        .post(format!("{url}/v1/online-enrollment"))
        .header("Scenario", "SELFIE")
        .send(&fixture("clean/obama.jpg")[..])
        .unwrap();
    let status = r.status();
    let body: serde_json::Value = r.body_mut().read_json().unwrap();
    assert_eq!(status, 200, "{body}");
    let id = body["keylessId"].as_str().unwrap();
    // Registered: the backend, over TLS, lists the user's (no) devices.
    let mut devices = https
        .get(format!("{backend_url}/v1/users/{id}/devices"))
        .header("X-Api-Key", "tls-key")
        .call()
        .unwrap();
    assert_eq!(
        devices.status(),
        200,
        "{}",
        devices.body_mut().read_to_string().unwrap()
    );

    // Plain HTTP on the TLS port gets no answer, and TLS is still served.
    let mut plain = agent.connect();
    plain
        .write_all(b"GET /health-check HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!got.starts_with(b"HTTP/1.1 200"), "plain HTTP answered");
    let health = https.get(format!("{url}/health-check")).call().unwrap();
    assert_eq!(health.status(), 200);
}
