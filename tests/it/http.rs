//! The agent contract over real HTTP, on a real server process and real photos (the
//! refusals decided by routing alone are in `routes`, in-process).

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::OnceLock;

use crate::common::server::{Response, Server, read_response};
use crate::common::{self, fixture, manifest, png_claiming};
use base64::Engine;
use recognize_agent::protect::states::{self, ClientState, ClientType, ServerState};

/// One shared agent with default settings, a 4 MiB body limit for the size tests.
fn agent() -> &'static Server {
    static AGENT: OnceLock<Server> = OnceLock::new();
    AGENT.get_or_init(|| {
        Server::agent(&[
            ("MAX_BODY_BYTES", "4194304"),
            ("MAX_CONCURRENCY", "2"),
            ("MAX_WAIT", "8"),
        ])
    })
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn assert_problem(r: &Response, status: u16, detail_has: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let v = r.json();
    assert_eq!(keys(&v), set(&["title", "statusCode", "detail"]));
    assert_eq!(v["statusCode"], status);
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains(detail_has),
        "detail {detail:?} should mention {detail_has:?}"
    );
}

#[test]
fn health_check() {
    let r = agent().request("GET", "/health-check", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"version": env!("CARGO_PKG_VERSION"), "status": "ok"})
    );
    // One request per connection, said so, so that no client keeps it for another.
    assert_eq!(r.header("Connection"), Some("close"));
}

#[test]
fn offline_enrollment_returns_fresh_states() {
    let image = fixture("clean/obama.jpg");
    let a = agent().enroll("SELFIE", &image);
    let b = agent().enroll("SELFIE", &image);
    for r in [&a, &b] {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            keys(&r.json()),
            set(&["keylessId", "clientState", "serverState"])
        );
    }
    let (a, b) = (a.json(), b.json());
    assert_ne!(a["keylessId"], b["keylessId"]);
    assert_ne!(a["clientState"], b["clientState"]);
    let client = states::decode::<ClientState>(a["clientState"].as_str().unwrap()).unwrap();
    assert_eq!(client.state.keyless_id, a["keylessId"].as_str().unwrap());
    let server = states::decode::<ServerState>(a["serverState"].as_str().unwrap()).unwrap();
    assert_eq!(server.state.keyless_id, client.state.keyless_id);
    assert_eq!(client.state.client_type, ClientType::Backup);
    assert_eq!(server.agent, client.agent);
    assert_eq!(server.state.sealed_to, common::sealing_key().public().id());
    let other = states::decode::<ClientState>(b["clientState"].as_str().unwrap()).unwrap();
    assert_ne!(client.state.seed, other.state.seed);
}

#[test]
fn client_state_type_header_selects_temporary_states() {
    let image = fixture("clean/obama.jpg");
    let enroll = |kind: &str| {
        let headers = [("Scenario", "SELFIE"), ("Client-State-Type", kind)];
        agent().request("POST", "/v1/offline-enrollment", &headers, &image)
    };
    let r = enroll("TEMPORARY");
    assert_eq!(r.status, 200);
    let client = states::decode::<ClientState>(r.json()["clientState"].as_str().unwrap());
    assert_eq!(client.unwrap().state.client_type, ClientType::Temporary);
    let r = enroll("FOREVER");
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("Client-State-Type")
    );
}

#[test]
fn every_scenario_and_format_enrols() {
    let png = {
        let img = image::load_from_memory(&fixture("clean/biden.jpg")).unwrap();
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    };
    for scenario in ["SELFIE", "TRUSTED_SOURCE", "DOCUMENT"] {
        assert_eq!(agent().enroll(scenario, &png).status, 200, "{scenario}");
    }
    let webp = {
        let img = image::load_from_memory(&fixture("clean/astronaut.jpg")).unwrap();
        let mut out = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::WebP,
        )
        .unwrap();
        out
    };
    assert_eq!(agent().enroll("SELFIE", &webp).status, 200);
}

#[test]
fn filter_triggered_has_the_exact_schema_for_each_filter() {
    let filter_names = set(&[
        "faceIsOccluded",
        "faceMissing",
        "faceMultiple",
        "facePartial",
        "faceTooSmall",
        "imageBlackAndWhite",
    ]);
    for file in [
        "occluded/obama_mask_blue.jpg",
        "missing/coffee.jpg",
        "multiple/obama_obama2.jpg",
        "partial/biden_left.jpg",
        "small/obama.jpg",
        "grey/biden.jpg",
    ] {
        let case = manifest().into_iter().find(|c| c.file == file).unwrap();
        let r = agent().enroll(&case.scenario, &fixture(file));
        assert_eq!(r.status, 422, "{file}");
        let v = r.json();
        assert_eq!(
            keys(&v),
            set(&["title", "statusCode", "detail", "filters"]),
            "{file}"
        );
        assert_eq!(v["title"], "Filter Triggered");
        assert_eq!(v["statusCode"], 422);
        assert_eq!(keys(&v["filters"]), filter_names);
        for (name, status) in v["filters"].as_object().unwrap() {
            let s = status.as_str().unwrap();
            assert!(
                [
                    "TRIGGERED",
                    "NOT_TRIGGERED",
                    "TURNED_OFF",
                    "CANNOT_RUN_ON_FRAME"
                ]
                .contains(&s),
                "{name}: {s}"
            );
        }
        for t in &case.triggers {
            assert_eq!(v["filters"][t], "TRIGGERED", "{file}: {t}");
        }
        assert!(!v["detail"].as_str().unwrap().is_empty());
    }
    // Every filter both ways: a clean face passes all six over HTTP too.
    assert_eq!(
        agent()
            .enroll("SELFIE", &fixture("clean/obama3.jpg"))
            .status,
        200
    );
}

#[test]
fn detail_names_every_failing_filter() {
    let v = agent().enroll("SELFIE", &fixture("grey/obama.jpg")).json();
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("black and white"), "{detail}");
    let v = agent()
        .enroll("SELFIE", &fixture("missing/rocket.jpg"))
        .json();
    assert_eq!(v["detail"], "No face found in the image");
    assert_eq!(v["filters"]["facePartial"], "CANNOT_RUN_ON_FRAME");
}

#[test]
fn base64_bodies() {
    let text = base64::engine::general_purpose::STANDARD.encode(fixture("clean/obama2.jpg"));
    let headers = [("Scenario", "SELFIE"), ("Content-Encoding", "base64")];
    let r = agent().request("POST", "/v1/offline-enrollment", &headers, text.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = agent().request(
        "POST",
        "/v1/offline-enrollment",
        &headers,
        b"%%%% not base64 %%%%",
    );
    assert_problem(&r, 400, "base64");
    let r = agent().request(
        "POST",
        "/v1/offline-enrollment",
        &[("Scenario", "SELFIE"), ("Content-Encoding", "gzip")],
        b"x",
    );
    assert_problem(&r, 400, "Content-Encoding");
}

#[test]
fn exif_transpose_header() {
    let with = |v: &str, image: &[u8]| {
        agent().request(
            "POST",
            "/v1/offline-enrollment",
            &[("Scenario", "SELFIE"), ("Exif-Transpose", v)],
            image,
        )
    };
    assert_eq!(
        with("true", &fixture("exif/obama_orientation6.jpg")).status,
        200
    );
    // A portrait stored upside down, its EXIF orientation saying so: enrolled when the
    // orientation is applied; read as stored, the upside-down face reads as covered.
    let upside_down = upside_down_with_orientation_tag(&fixture("clean/obama.jpg"));
    assert_eq!(with("true", &upside_down).status, 200);
    let r = with("false", &upside_down);
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["filters"]["faceIsOccluded"], "TRIGGERED");
    assert_problem(&with("maybe", &upside_down), 400, "Exif-Transpose");
}

/// `jpeg` turned by 180° and re-encoded, with an EXIF block whose orientation (3) turns it
/// back.
fn upside_down_with_orientation_tag(jpeg: &[u8]) -> Vec<u8> {
    let turned = image::load_from_memory(jpeg).unwrap().rotate180().to_rgb8();
    let mut encoded = Vec::new();
    turned
        .write_to(
            &mut std::io::Cursor::new(&mut encoded),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    // Little-endian TIFF header, one IFD with one entry: Orientation (0x0112), SHORT, 3.
    let mut exif = b"Exif\0\0II*\0\x08\0\0\0\x01\0".to_vec();
    exif.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]);
    let mut out = encoded[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&encoded[2..]);
    out
}

#[test]
fn bad_bodies_are_clear_errors_and_the_server_keeps_serving() {
    assert_problem(
        &agent().enroll("SELFIE", b"definitely not an image"),
        400,
        "format",
    );
    let mut truncated = fixture("clean/obama.jpg");
    truncated.truncate(truncated.len() / 3);
    // Decoded as far as the data goes: the face's missing lower part reads as covered.
    let r = agent().enroll("SELFIE", &truncated);
    assert_eq!(r.status, 422, "truncated JPEG");
    assert_eq!(
        r.json()["filters"]["faceIsOccluded"],
        "TRIGGERED",
        "truncated JPEG"
    );
    let mut random = vec![0u8; 100_000];
    for (i, b) in random.iter_mut().enumerate() {
        *b = (i.wrapping_mul(2654435761) >> 13) as u8;
    }
    assert_problem(&agent().enroll("SELFIE", &random), 400, "format");
    assert_problem(
        &agent().enroll("SELFIE", &png_claiming(60_000, 60_000)),
        413,
        "60000x60000",
    );
    assert_eq!(
        agent().request("GET", "/health-check", &[], b"").status,
        200
    );
}

#[test]
fn oversized_bodies_are_413_without_reading_them() {
    // Declared too large: refused from Content-Length alone, no body sent at all.
    let mut s = agent().connect();
    write!(s, "POST /v1/offline-enrollment HTTP/1.1\r\nHost: t\r\nScenario: SELFIE\r\nContent-Length: 209715200\r\nConnection: close\r\n\r\n").unwrap();
    assert_problem(&read_response(&mut s), 413, "limit");
    // Chunked, no length: refused once the limit is crossed while reading.
    let mut s = agent().connect();
    write!(s, "POST /v1/offline-enrollment HTTP/1.1\r\nHost: t\r\nScenario: SELFIE\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..(6 * 1024 * 1024 / chunk.len()) {
        if write!(s, "{:x}\r\n", chunk.len())
            .and_then(|_| s.write_all(&chunk))
            .and_then(|_| s.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    assert_problem(&read_response(&mut s), 413, "limit");
    assert_eq!(
        agent().request("GET", "/health-check", &[], b"").status,
        200
    );
}

#[test]
fn too_many_enrolments_get_429_with_retry_after() {
    let agent = Server::agent(&[("MAX_CONCURRENCY", "1"), ("MAX_WAIT", "0")]);
    // A large image keeps each enrolment busy long enough to overlap.
    let big = {
        let img = image::load_from_memory(&fixture("small/obama.jpg"))
            .unwrap()
            .resize_exact(2560, 1920, image::imageops::FilterType::Nearest);
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    };
    let statuses: Vec<Response> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| agent.enroll("SELFIE", &big)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused: Vec<&Response> = statuses.iter().filter(|r| r.status == 429).collect();
    assert!(!refused.is_empty(), "no enrolment was refused");
    for r in refused {
        assert_problem(r, 429, "retry");
        assert_eq!(r.header("Retry-After"), Some("1"));
    }
    // The others got the answer the image gets alone; at least one did.
    let alone = agent.enroll("SELFIE", &big).status;
    assert_ne!(alone, 429);
    let codes: Vec<u16> = statuses.iter().map(|r| r.status).collect();
    assert!(
        codes.iter().all(|&c| c == alone || c == 429) && codes.contains(&alone),
        "{codes:?}, alone {alone}"
    );
    assert_eq!(agent.request("GET", "/health-check", &[], b"").status, 200);
}

#[test]
fn logs_hold_no_biometric_data() {
    let r = agent().enroll("SELFIE", &fixture("clean/astronaut.jpg"));
    let v = r.json();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let log = agent().log.lock().unwrap().clone();
    assert!(
        log.contains("/v1/offline-enrollment"),
        "requests are logged"
    );
    for secret in [
        v["clientState"].as_str().unwrap(),
        v["serverState"].as_str().unwrap(),
    ] {
        assert!(!log.contains(&secret[5..40]), "a state leaked into the log");
    }
    assert!(
        !log.to_lowercase().contains("embedding"),
        "embedding mentioned in the log"
    );
}

#[test]
fn no_face_with_face_missing_turned_off_is_a_clear_400() {
    let agent = Server::agent(&[("FILTERS_OFF_SELFIE", "faceMissing")]);
    let r = agent.enroll("SELFIE", &fixture("missing/coffee.jpg"));
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("no single face")
    );
}

#[test]
fn with_agent_api_key_the_enrolment_endpoints_need_it() {
    let agent = Server::agent(&[("AGENT_API_KEY", "s3cret-agent-key")]);
    let photo = fixture("clean/obama.jpg");
    let enrol = |headers: &[(&str, &str)]| {
        let mut all = vec![("Scenario", "SELFIE")];
        all.extend_from_slice(headers);
        agent.request("POST", "/v1/offline-enrollment", &all, &photo)
    };
    assert_problem(&enrol(&[]), 401, "X-Api-Key header is required");
    // (Surrounding blanks are not part of a header value.)
    for wrong in ["", "s3cret", "s3cret-agent-key2", "S3CRET-AGENT-KEY"] {
        assert_problem(&enrol(&[("X-Api-Key", wrong)]), 401, "wrong key");
    }
    // Refused before anything else is looked at: no 409 for online, no 405.
    let online = agent.request("POST", "/v1/online-enrollment", &[], &photo);
    assert_problem(&online, 401, "X-Api-Key");
    let get = agent.request("GET", "/v1/offline-enrollment", &[], b"");
    assert_problem(&get, 401, "X-Api-Key");
    // With the key, as without one configured; the health check stays open.
    let ok = enrol(&[("X-Api-Key", "s3cret-agent-key")]);
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(agent.request("GET", "/health-check", &[], b"").status, 200);
    // The key never reaches the log.
    assert!(!agent.logs("s3cret"));
}
