//! Kiosk mode over real HTTP, with frames played from files: the page, live advice that
//! follows the frames, the preview, an enrolment from the start button, the camera
//! released when nobody watches, and the page kept from other machines.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::server::Server;
use crate::common::{self, fixtures};

/// A directory holding `files` (fixtures) in play order.
fn frames(name: &str, files: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("kiosk")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, f) in files.iter().enumerate() {
        std::fs::copy(fixtures().join(f), dir.join(format!("{i:02}.jpg"))).unwrap();
    }
    dir
}

fn kiosk(dir: &Path, fps: &str, host: &str, idle: &str) -> Server {
    let args = [
        "--kiosk",
        "--frames",
        dir.to_str().unwrap(),
        "--frames-fps",
        fps,
    ];
    Server::spawn_with(
        "serve",
        host,
        &args,
        &[("KIOSK_IDLE", idle), ("ANALYSIS_FPS", "10")],
    )
}

fn status(server: &Server) -> serde_json::Value {
    let r = server.request("GET", "/kiosk/status", &[], b"");
    assert_eq!(r.status, 200);
    r.json()
}

/// Polls the status until `until` holds (at most 60 s); every status seen.
fn poll_until(
    server: &Server,
    mut until: impl FnMut(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(60) {
        let v = status(server);
        let done = until(&v);
        seen.push(v);
        if done {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not reached in 60 s; last: {:?}", seen.last());
}

#[test]
fn advice_follows_the_frames_and_start_enrols_the_person() {
    let dir = frames(
        "advice",
        &[
            "missing/brick.jpg",
            "small/obama.jpg",
            "multiple/obama_obama2.jpg",
            "occluded/obama_mask_blue.jpg",
            "clean/obama.jpg",
        ],
    );
    let server = kiosk(&dir, "2", "127.0.0.1", "10");
    let page = server.request("GET", "/kiosk", &[], b"");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8(page.body.clone()).unwrap();
    assert!(
        html.contains("/kiosk/status") && !html.contains("http://") && !html.contains("https://")
    );

    // Advice for each kind of frame, in play order, as the loop goes round. A loaded
    // machine may skip a frame (the analysis takes only the newest): then a later round
    // shows them all.
    let expected = [
        "STEP_IN",
        "MOVE_CLOSER",
        "ONE_PERSON",
        "UNCOVER_FACE",
        "READY",
    ];
    let mut codes: Vec<String> = Vec::new();
    let seen = poll_until(&server, |v| {
        if let Some(code) = v["guidance"]["code"].as_str()
            && codes.last().map(String::as_str) != Some(code)
        {
            codes.push(code.to_string());
        }
        codes.ends_with(&expected.map(String::from))
    });
    let ready = seen.last().unwrap();
    assert_eq!(ready["phase"], "WATCHING");
    assert_eq!(ready["guidance"]["message"], "Ready");
    let face = ready["face"].as_array().unwrap();
    assert!(
        face.iter()
            .all(|v| (0.0..=1.0).contains(&v.as_f64().unwrap()))
    );

    // The preview: a JPEG no wider than 640.
    let frame = server.request("GET", "/kiosk/frame.jpg", &[], b"");
    assert_eq!(frame.status, 200);
    assert_eq!(frame.header("Content-Type"), Some("image/jpeg"));
    assert_eq!(frame.header("Cache-Control"), Some("no-store"));
    let preview = image::load_from_memory(&frame.body).unwrap();
    assert!(preview.width() <= 640 && preview.width() > 0);

    // Start: the best frame of the next moments is enrolled.
    assert_eq!(server.request("GET", "/kiosk/result", &[], b"").status, 404);
    let started = server.request("POST", "/kiosk/start", &[], b"");
    assert_eq!(started.status, 202, "{}", started.json());
    assert_eq!(started.json()["phase"], "CAPTURING");
    assert_eq!(server.request("POST", "/kiosk/start", &[], b"").status, 409);
    let done = poll_until(&server, |v| v["result"].is_object());
    let result = &done.last().unwrap()["result"];
    assert_eq!(result["success"], true, "{result}");
    let answer = server.request("GET", "/kiosk/result", &[], b"").json();
    assert_eq!(answer["keylessId"], result["keylessId"]);
    assert!(answer["serverState"].is_string());
    // Only the loop's one clear face (obama.jpg) can have been enrolled.
    let bytes = std::fs::read(fixtures().join("clean/obama_dark.jpg")).unwrap();
    let image = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let other = common::enroller().models.analyse(&image).unwrap();
    let state = |k: &str| answer[k].as_str().unwrap().to_string();
    let embedding = other.primary.unwrap().embedding;
    let score = common::match_score(&state("clientState"), &state("serverState"), &embedding);
    assert!(score >= common::threshold(), "{score}");
}

#[test]
fn the_camera_runs_only_while_watched_and_failures_are_reported() {
    let dir = frames("idle", &["clean/biden.jpg"]);
    let server = kiosk(&dir, "5", "127.0.0.1", "1");
    let first = server.request("GET", "/kiosk/frame.jpg", &[], b"");
    assert_eq!(first.status, 404, "no frame before anyone watches");
    poll_until(&server, |v| v["phase"] == "WATCHING");
    assert_eq!(
        server.request("GET", "/kiosk/frame.jpg", &[], b"").status,
        200
    );
    // Nobody asks for a while: the source is released, the preview forgotten.
    std::thread::sleep(Duration::from_secs(3));
    let idle = server.request("GET", "/kiosk/status", &[], b"").json();
    assert_eq!(idle["phase"], "IDLE", "{idle}");
    assert_eq!(
        server.request("GET", "/kiosk/frame.jpg", &[], b"").status,
        404
    );

    // Frames that cannot be read: the page is told why.
    let empty = frames("broken", &[]);
    let broken = kiosk(&empty, "5", "127.0.0.1", "10");
    let v = poll_until(&broken, |v| v["phase"] == "UNAVAILABLE");
    let error = v.last().unwrap()["error"].as_str().unwrap().to_string();
    assert!(error.contains("no image files"), "{error}");
}

#[test]
fn the_kiosk_is_off_unless_asked_and_served_to_this_machine_only() {
    let plain = Server::agent(&[]);
    let r = plain.request("GET", "/kiosk", &[], b"");
    assert_eq!(r.status, 404);
    assert!(r.json()["detail"].as_str().unwrap().contains("--kiosk"));

    // Reached through another address of this machine, the kiosk refuses.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe
        .connect("192.0.2.1:9")
        .expect("a route off this machine");
    let ip = probe.local_addr().unwrap().ip();
    assert!(!ip.is_loopback(), "{ip}");
    let dir = frames("remote", &["clean/biden.jpg"]);
    let server = kiosk(&dir, "5", "0.0.0.0", "10");
    let remote = std::net::SocketAddr::new(ip, server.addr.port());
    for (method, path) in [
        ("GET", "/kiosk"),
        ("GET", "/kiosk/frame.jpg"),
        ("POST", "/kiosk/start"),
    ] {
        let r = server.request_via(remote, method, path, &[], b"");
        assert_eq!(r.status, 403, "{method} {path}");
    }
    // The agent's own API stays open to other machines.
    let health = server.request_via(remote, "GET", "/health-check", &[], b"");
    assert_eq!(health.status, 200);
    assert_eq!(server.request("GET", "/kiosk", &[], b"").status, 200);
}
