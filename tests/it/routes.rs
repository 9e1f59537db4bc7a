//! The agent's routes in-process, on the in-memory connection: what is refused before an
//! image is looked at (paths, methods, headers, online enrolment without a backend).

use std::sync::{Arc, OnceLock};

use embedded_svc::http::Method;
use recognize_agent::agent::admission::Gate;
use recognize_agent::agent::{Agent, Limits};
use recognize_agent::http::connection::{MemoryConnection, Response};
use recognize_agent::service::Service;

use crate::common::{self, fixture};

/// One agent with default limits, no backend, no kiosk and no API key.
fn agent() -> &'static Agent {
    static AGENT: OnceLock<Agent> = OnceLock::new();
    AGENT.get_or_init(|| Agent {
        enroller: Arc::new(common::new_enroller()),
        gate: Gate::new(1, 1),
        limits: Limits {
            max_body_bytes: 4 << 20,
            max_pixels: 25_000_000,
        },
        backend: None,
        kiosk: None,
        api_key: None,
    })
}

/// The agent's answer to `method path` with `headers` and `body`.
fn request(method: Method, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut conn = MemoryConnection::request(method, path, headers, body);
    agent().handle(&mut conn).unwrap();
    conn.into_response().expect("an answer")
}

/// `r` is the JSON problem `status`, its detail naming `detail_has`.
fn assert_problem(r: &Response, status: u16, detail_has: &str) {
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(r.status, status, "{body}");
    assert!(
        r.headers
            .contains(&("Content-Type".into(), "application/json".into()))
    );
    assert_eq!(body["statusCode"], status);
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(detail_has), "{detail} lacks {detail_has}");
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn unknown_paths_and_wrong_methods() {
    let r = request(Method::Get, "/v2/whatever", &[], b"");
    assert_problem(&r, 404, "/v2/whatever");
    let r = request(Method::Get, "/v1/offline-enrollment", &[], b"");
    assert_problem(&r, 405, "POST");
    assert_eq!(header(&r, "Allow"), Some("POST"));
    let r = request(Method::Delete, "/health-check", &[], b"");
    assert_problem(&r, 405, "GET");
    assert_eq!(header(&r, "Allow"), Some("GET"));
    let r = request(Method::Get, "/kiosk", &[], b"");
    assert_problem(&r, 404, "kiosk mode is off");
}

#[test]
fn header_errors_are_400() {
    let image = fixture("clean/obama.jpg");
    let post = |headers: &[(&str, &str)], body: &[u8]| {
        request(Method::Post, "/v1/offline-enrollment", headers, body)
    };
    assert_problem(&post(&[], &image), 400, "Scenario");
    assert_problem(&post(&[("Scenario", "PASSPORT")], &image), 400, "PASSPORT");
    assert_problem(&post(&[("Scenario", "SELFIE")], b""), 400, "empty");
}

#[test]
fn online_enrollment_without_backend_is_409() {
    let r = request(
        Method::Post,
        "/v1/online-enrollment",
        &[("Scenario", "SELFIE")],
        &fixture("clean/obama.jpg"),
    );
    assert_problem(&r, 409, "AUTH_SERVER_URL");
}
