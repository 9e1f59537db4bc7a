//! The OpenAPI descriptions of the agent and the backend, against the running servers:
//! each serves its own at `/openapi.yaml`, with the contract's names, and schemathesis
//! (PyPI) finds nothing wrong with either, every check on. The schemathesis run is ignored
//! by `cargo test`; `scripts/api-check` installs schemathesis and runs it.
#![cfg(feature = "backend")]

use std::path::Path;
use std::process::Command;

use crate::common::server::Server;
use crate::common::{self, fixture};
use recognize_agent::contract::{Filter, Scenario};

const AGENT_DOC: &str = include_str!("../../src/agent/openapi.yaml");
const BACKEND_DOC: &str = include_str!("../../src/backend/openapi.yaml");
const BACKEND_KEY: &str = "openapi-backend-key";
const AGENT_KEY: &str = "openapi-agent-key";

/// A backend on a fresh database named `name`, and an agent that registers online
/// enrolments on it, asks for `X-Api-Key` and runs the kiosk on the clean photos.
fn servers(name: &str) -> (Server, Server) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(name);
    let _ = std::fs::remove_file(&db);
    let trusted = common::agent_public_key();
    let backend = Server::spawn(
        "backend",
        &[
            ("BACKEND_API_KEY", BACKEND_KEY),
            ("TRUSTED_AGENT_KEYS", &trusted),
            ("DATABASE", db.to_str().unwrap()),
        ],
    );
    let frames = common::fixtures().join("clean");
    let agent = Server::spawn_with(
        "serve",
        "127.0.0.1",
        &["--kiosk", "--frames", frames.to_str().unwrap()],
        &[
            ("AUTH_SERVER_URL", &format!("http://{}", backend.addr)),
            ("AUTH_SERVER_API_KEY", BACKEND_KEY),
            ("AGENT_API_KEY", AGENT_KEY),
        ],
    );
    (backend, agent)
}

#[test]
fn each_server_serves_its_own_description_with_the_contract_names() {
    let (backend, agent) = servers("names.db");
    for (server, doc) in [(&agent, AGENT_DOC), (&backend, BACKEND_DOC)] {
        // Public on both, though every other backend call needs the key.
        let r = server.request("GET", "/openapi.yaml", &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("application/yaml"));
        assert_eq!(r.body, doc.as_bytes());
        let version = format!("version: \"{}\"", env!("CARGO_PKG_VERSION"));
        assert!(doc.contains(&version), "the document's {version}");
    }
    assert_eq!(
        backend.request("GET", "/health-check", &[], b"").status,
        401
    );

    let mut names = vec![
        "/health-check",
        "/v1/offline-enrollment",
        "/v1/online-enrollment",
        "keylessId",
        "clientState",
        "serverState",
        "title: recognize-agent",
        "[title, statusCode, detail, filters]",
        "enum: [Filter Triggered]",
        "enum: [TRIGGERED, NOT_TRIGGERED, TURNED_OFF, CANNOT_RUN_ON_FRAME]",
        "name: Scenario",
        "name: Exif-Transpose",
        "name: Content-Encoding",
        "enum: [base64]",
    ];
    let filters = Filter::ALL.map(|f| {
        format!(
            "{}: {{ $ref: \"#/components/schemas/FilterStatus\" }}",
            f.name()
        )
    });
    names.extend(filters.iter().map(String::as_str));
    let scenarios = format!("enum: [{}]", Scenario::ALL.map(Scenario::as_str).join(", "));
    names.push(&scenarios);
    for name in names {
        assert!(
            AGENT_DOC.contains(name),
            "the agent's document lacks {name}"
        );
    }
}

/// A user enrolled online (committed, with its BACKUP device) and one registered but not
/// committed, so that schemathesis reaches the logic of the user routes.
fn users(backend: &Server, agent: &Server) -> (String, String, String) {
    let enrol = |mode: &str, photo: &str| {
        let key = [("Scenario", "SELFIE"), ("X-Api-Key", AGENT_KEY)];
        let r = agent.request(
            "POST",
            &format!("/v1/{mode}-enrollment"),
            &key,
            &fixture(photo),
        );
        assert_eq!(r.status, 200);
        r.json()
    };
    let committed = enrol("online", "clean/obama.jpg")["keylessId"]
        .as_str()
        .unwrap()
        .to_string();
    let offline = enrol("offline", "clean/biden.jpg");
    let body = serde_json::json!({"serverState": offline["serverState"]});
    let with_key = [("X-Api-Key", BACKEND_KEY)];
    let registered = backend.request(
        "POST",
        "/v1/uncommitted-users",
        &with_key,
        body.to_string().as_bytes(),
    );
    assert_eq!(registered.status, 201);
    let uncommitted = registered.json()["keylessId"].as_str().unwrap().to_string();
    let devices = backend.request(
        "GET",
        &format!("/v1/users/{committed}/devices"),
        &with_key,
        b"",
    );
    let device = devices.json()["devices"][0]["deviceId"].clone();
    let device = device.as_str().map(String::from).unwrap();
    (committed, uncommitted, device)
}

#[test]
#[ignore = "needs schemathesis: run scripts/api-check"]
fn schemathesis_finds_nothing_wrong_with_either_server() {
    let (backend, agent) = servers("schemathesis.db");
    let (committed, uncommitted, device) = users(&backend, &agent);
    let program = std::env::var("SCHEMATHESIS").unwrap_or("schemathesis".into());
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/schemathesis.toml");
    let examples = std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or("100".into());
    for server in [&agent, &backend] {
        // Its cache of past failures stays in the target directory.
        let status = Command::new(&program)
            .current_dir(env!("CARGO_TARGET_TMPDIR"))
            .arg("--config-file")
            .arg(&config)
            .args(["run", &format!("http://{}/openapi.yaml", server.addr)])
            .args([
                "--checks",
                "all",
                "--max-examples",
                &examples,
                "--workers",
                "2",
            ])
            .args(["--seed", "1"])
            .env("AGENT_API_KEY", AGENT_KEY)
            .env("BACKEND_API_KEY", BACKEND_KEY)
            .env("COMMITTED_ID", &committed)
            .env("UNCOMMITTED_ID", &uncommitted)
            .env("DEVICE_ID", &device)
            .status()
            .expect("schemathesis (scripts/api-check installs it)");
        assert!(
            status.success(),
            "schemathesis found failures on {}",
            server.addr
        );
    }
    // Nothing it sent hurt either server: both still serve.
    for server in [&agent, &backend] {
        assert!(!server.log.lock().unwrap().contains("panicked"));
    }
    let health = [("X-Api-Key", BACKEND_KEY)];
    assert_eq!(agent.request("GET", "/health-check", &[], b"").status, 200);
    assert_eq!(
        backend.request("GET", "/health-check", &health, b"").status,
        200
    );
}
