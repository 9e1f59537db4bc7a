//! Account recovery end to end, over real HTTP with real photos: an agent and a backend
//! process on ephemeral ports, enrolment offline and online, registration and commit,
//! recovery on a new device by `recognize-agent recover` (the backend matches the
//! protected templates), the attempt budget, device and user listing and deletion.
#![cfg(feature = "backend")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use crate::common::server::{Response, Server};
use crate::common::{self, fixture};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use recognize_agent::backend::client::{CallError, Client};
use recognize_agent::backend::messages::Bind;
use recognize_agent::clock::{Clock, ManualClock, SystemClock};
use recognize_agent::contract::Scenario;
use recognize_agent::protect::issue::{Issuer, REGISTRATION_WINDOW_SECONDS};
use recognize_agent::protect::keys::KeyFile;
use recognize_agent::protect::seal::SealingKey;
use recognize_agent::protect::states::{self, ClientState, ClientType, ServerState};
use recognize_agent::recovery;
use recognize_agent::vision::decode::{self, DecodeOptions};
use serde_json::{Value, json};

const API_KEY: &str = "test-backend-key";
const ADMIN_KEY: &str = "test-admin-key";

/// Scratch directory of this test binary, emptied when it starts.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("recovery");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A backend on the database file `name` in the scratch directory, trusting the agents
/// of the tests, with `extra` settings.
fn start_backend(name: &str, extra: &[(&str, &str)]) -> Server {
    let db = scratch().join(name);
    let (agents, db) = (common::agent_public_key(), db.to_str().unwrap().to_string());
    let mut env = vec![
        ("BACKEND_API_KEY", API_KEY),
        ("BACKEND_ADMIN_KEY", ADMIN_KEY),
        ("TRUSTED_AGENT_KEYS", &agents),
        ("DATABASE", &db),
    ];
    env.extend_from_slice(extra);
    Server::spawn("backend", &env)
}

/// The backend most tests share.
fn backend() -> &'static Server {
    static BACKEND: OnceLock<Server> = OnceLock::new();
    BACKEND.get_or_init(|| start_backend("backend.db", &[]))
}

/// A count from the backend's database, read beside the running backend.
fn count(sql: &str, param: &str) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        scratch().join("backend.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row(sql, [param], |r| r.get(0)).unwrap()
}

fn backend_url() -> String {
    format!("http://{}", backend().addr)
}

/// An agent registering online enrolments on [`backend`].
fn agent() -> &'static Server {
    static AGENT: OnceLock<Server> = OnceLock::new();
    AGENT.get_or_init(|| {
        Server::agent(&[
            ("AUTH_SERVER_URL", &backend_url()),
            ("AUTH_SERVER_API_KEY", API_KEY),
        ])
    })
}

/// A backend call with the API key.
fn call(method: &str, path: &str, body: &Value) -> Response {
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    backend().request(method, path, &[("X-Api-Key", API_KEY)], &body)
}

fn devices(id: &str) -> Vec<Value> {
    let r = call("GET", &format!("/v1/users/{id}/devices"), &Value::Null);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["devices"].as_array().unwrap().clone()
}

fn types(id: &str) -> Vec<String> {
    devices(id)
        .iter()
        .map(|d| d["type"].as_str().unwrap().to_string())
        .collect()
}

fn assert_status(r: &Response, status: u16, detail_has: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        detail.contains(detail_has),
        "{detail:?} lacks {detail_has:?}"
    );
}

/// Enrols `photo` offline: (keylessId, clientState, serverState).
fn enrol_offline(photo: &str) -> (String, String, String) {
    let r = agent().enroll("SELFIE", &fixture(photo));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let s = |k: &str| v[k].as_str().unwrap().to_string();
    (s("keylessId"), s("clientState"), s("serverState"))
}

/// Enrols `photo` offline and registers and commits it on the backend.
fn enrolled(photo: &str) -> (String, String) {
    let (id, client, server) = enrol_offline(photo);
    let r = call("POST", "/v1/users", &json!({ "serverState": server }));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    (id, client)
}

/// Runs `recognize-agent recover` against the shared backend: (exit code, JSON).
fn recover(client_state: &str, photo: &str, device_key: &Path) -> (i32, Value) {
    recover_at(&backend_url(), client_state, photo, device_key)
}

/// Runs `recognize-agent recover` with the client state in a file against the backend
/// at `url`: (exit code, JSON).
fn recover_at(url: &str, client_state: &str, photo: &str, device_key: &Path) -> (i32, Value) {
    let state_file = scratch().join(format!("{}.state", states::b64(&rand_tag())));
    std::fs::write(&state_file, client_state).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recognize-agent"))
        .arg("recover")
        .args(["--backend", url, "--api-key", API_KEY])
        .arg("--client-state")
        .arg(&state_file)
        .arg("--device-key")
        .arg(device_key)
        .arg(common::fixtures().join(photo))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    (out.status.code().unwrap_or(-1), json)
}

fn rand_tag() -> [u8; 9] {
    states::random_bytes().unwrap()
}

#[test]
fn offline_enrolment_is_registered_committed_and_recovered_on_a_new_device() {
    let (id, client, server) = enrol_offline("clean/obama.jpg");
    let r = call(
        "POST",
        "/v1/uncommitted-users",
        &json!({ "serverState": server }),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), json!({ "keylessId": id }));
    // Uncommitted: no devices to list, no challenge.
    let devices_path = format!("/v1/users/{id}/devices");
    assert_status(&call("GET", &devices_path, &Value::Null), 404, &id);
    let challenges = format!("/v1/users/{id}/challenges");
    assert_status(&call("POST", &challenges, &Value::Null), 404, &id);
    let r = call(
        "POST",
        &format!("/v1/uncommitted-users/{id}/commit"),
        &Value::Null,
    );
    assert_eq!(r.status, 200);
    // Registering the same state again is a conflict.
    let again = call("POST", "/v1/users", &json!({ "serverState": server }));
    assert_status(&again, 409, "already registered");
    assert_eq!(types(&id), ["BACKUP"]);

    // A new device: another photo of the same person matches at the backend and binds.
    let device_key = scratch().join("new-device.key");
    let (code, out) = recover(&client, "clean/obama2.jpg", &device_key);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["keylessId"], id.as_str());
    assert_eq!(out["type"], "SDK");
    let mode = std::fs::metadata(&device_key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let listed = devices(&id);
    assert_eq!(types(&id), ["BACKUP", "SDK"]);
    assert_eq!(listed[1]["deviceId"], out["deviceId"]);
    for d in &listed {
        let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["createdAt", "deviceId", "type"]);
    }

    // The user deletes the new device, then the enrolment's.
    for (i, d) in listed.iter().enumerate().rev() {
        let path = format!("{devices_path}/{}", d["deviceId"].as_str().unwrap());
        let r = call("DELETE", &path, &Value::Null);
        assert_eq!((r.status, r.body.len()), (204, 0));
        assert_eq!(devices(&id).len(), i);
        assert_status(&call("DELETE", &path, &Value::Null), 404, "no device");
    }

    // The audit log holds each step, in order: ids and times, nothing else.
    let log = audit(&id);
    let events: Vec<(&str, &Value)> = log
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), &e["deviceId"]))
        .collect();
    assert_eq!(
        events,
        [
            ("REGISTERED", &listed[0]["deviceId"]),
            ("COMMITTED", &Value::Null),
            ("DEVICE_BOUND", &listed[1]["deviceId"]),
            ("DEVICE_DELETED", &listed[1]["deviceId"]),
            ("DEVICE_DELETED", &listed[0]["deviceId"]),
        ]
    );
    for entry in &log {
        let mut keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        keys.retain(|k| *k != "deviceId");
        assert_eq!(keys, ["at", "event", "keylessId", "seq"]);
    }

    // The user is deleted (a management call): the client state no longer recovers
    // anything, and the server state no longer registers.
    let user = format!("/v1/users/{id}");
    let admin = [("X-Api-Key", ADMIN_KEY)];
    assert_status(&call("DELETE", &user, &Value::Null), 401, "wrong key");
    assert_eq!(backend().request("DELETE", &user, &admin, b"").status, 204);
    assert_status(&backend().request("DELETE", &user, &admin, b""), 404, &id);
    let again = call("POST", "/v1/users", &json!({ "serverState": server }));
    assert_status(&again, 410, "deleted");
    let (code, out) = recover(&client, "clean/obama2.jpg", &device_key);
    assert_eq!(code, 2, "{out}");
    assert!(out["error"].as_str().unwrap().contains("404"), "{out}");
    assert_status(&call("GET", &devices_path, &Value::Null), 404, &id);
    assert_eq!(audit(&id).last().unwrap()["event"], "USER_DELETED");
}

/// The entries of `recognize-agent audit` on the shared backend's database for user `id`.
fn audit(id: &str) -> Vec<Value> {
    audit_of(&scratch().join("backend.db"), id)
}

/// The entries of `recognize-agent audit` on database `db` for user `id`.
fn audit_of(db: &Path, id: &str) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_recognize-agent"))
        .args(["audit", "--database", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["keylessId"] == id)
        .collect()
}

/// Impostors until the lock; the genuine person is then refused with the lock's reason
/// until the management call lifts it. Every attempt is in the audit log.
#[test]
fn impostor_attempts_lock_the_user_until_unlocked() {
    let strict = start_backend(
        "strict.db",
        &[
            ("RECOVERY_LOCK_AFTER", "3"),
            ("RECOVERY_BACKOFF_SECONDS", "0"),
        ],
    );
    let url = format!("http://{}", strict.addr);
    let (id, client, server) = enrol_offline("clean/biden.jpg");
    let backend = Client::new(&url, API_KEY).unwrap();
    assert_eq!(backend.register(&server).unwrap(), id);
    let device = scratch().join("lock.key");
    for (i, impostor) in ["clean/obama.jpg", "clean/astronaut.jpg", "clean/obama2.jpg"]
        .into_iter()
        .enumerate()
    {
        let (code, out) = recover_at(&url, &client, impostor, &device);
        let reason = if i < 2 { "NO_MATCH" } else { "LOCKED" };
        assert_eq!(
            (code, out["bound"].clone(), out["reason"].as_str()),
            (1, json!(false), Some(reason)),
            "{out}"
        );
    }
    let (code, out) = recover_at(&url, &client, "clean/biden_bright.jpg", &device);
    assert_eq!((code, out["reason"].as_str()), (1, Some("LOCKED")), "{out}");
    assert!(out["detail"].as_str().unwrap().contains("unlock"), "{out}");
    // Only the admin key unlocks: a device's key cannot.
    assert!(matches!(
        backend.unlock(&id),
        Err(CallError::Refused { status: 401, .. })
    ));
    Client::new(&url, ADMIN_KEY).unwrap().unlock(&id).unwrap();
    let (code, out) = recover_at(&url, &client, "clean/biden_bright.jpg", &device);
    assert_eq!((code, &out["type"]), (0, &json!("SDK")), "{out}");
    let log = audit_of(&strict_db(), &id);
    let events: Vec<&str> = log.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "REGISTERED",
            "COMMITTED",
            "BINDING_REFUSED",
            "BINDING_REFUSED",
            "BINDING_REFUSED",
            "LOCKED",
            "UNLOCKED",
            "DEVICE_BOUND"
        ]
    );
}

fn strict_db() -> PathBuf {
    scratch().join("strict.db")
}

/// After the free refusals the backend asks the device to wait, and says how long.
#[test]
fn refusals_beyond_the_free_ones_make_the_device_wait() {
    let (id, client) = enrolled("clean/obama3.jpg");
    let device = scratch().join("wait.key");
    for _ in 0..4 {
        let (code, out) = recover(&client, "clean/biden.jpg", &device);
        assert_eq!(
            (code, out["reason"].as_str()),
            (1, Some("NO_MATCH")),
            "{out}"
        );
    }
    let r = call("POST", &format!("/v1/users/{id}/challenges"), &Value::Null);
    assert_status(&r, 429, "try again in");
    let wait: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Other users are not held back.
    let (other, _) = enrolled("clean/obama2.jpg");
    let backend = Client::new(&backend_url(), API_KEY).unwrap();
    assert!(backend.challenge(&other).is_ok());
}

#[test]
fn online_enrolment_registers_and_commits_in_one_call() {
    let r = agent().request(
        "POST",
        "/v1/online-enrollment",
        &[("Scenario", "SELFIE"), ("Client-State-Type", "TEMPORARY")],
        &fixture("clean/biden.jpg"),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["clientState", "keylessId"]);
    let id = v["keylessId"].as_str().unwrap();
    assert_eq!(types(id), ["TEMPORARY"]);
    let client = v["clientState"].as_str().unwrap();
    let (code, out) = recover(client, "clean/biden_bright.jpg", &scratch().join("d2.key"));
    assert_eq!((code, &out["type"]), (0, &json!("SDK")), "{out}");
    assert_eq!(types(id), ["TEMPORARY", "SDK"]);
    // A filtered image registers nothing and answers 422 as offline.
    let r = agent().post(
        "/v1/online-enrollment",
        "SELFIE",
        &fixture("occluded/biden_sunglasses.jpg"),
    );
    assert_eq!(r.status, 422);
}

#[test]
fn another_person_binds_nothing_and_the_try_is_counted() {
    let (id, client) = enrolled("clean/obama.jpg");
    let (code, out) = recover(&client, "clean/biden.jpg", &scratch().join("d3.key"));
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        (&out["bound"], &out["reason"]),
        (&json!(false), &json!("NO_MATCH"))
    );
    assert!(
        out["detail"].as_str().unwrap().contains("does not match"),
        "{out}"
    );
    assert_eq!(types(&id), ["BACKUP"]);
    // The challenge is spent, the refusal counted and audited.
    let open = count("SELECT count(*) FROM challenges WHERE keyless_id = ?1", &id);
    let failures = count("SELECT failures FROM users WHERE keyless_id = ?1", &id);
    assert_eq!((open, failures), (0, 1));
    assert_eq!(audit(&id).last().unwrap()["event"], "BINDING_REFUSED");
}

/// The embedding of `photo`, computed here as a device would.
fn embedding(photo: &str) -> recognize_agent::vision::embed::Embedding {
    let image = decode::decode(&fixture(photo), &DecodeOptions::file(50_000_000)).unwrap();
    let analysis = common::enroller().models.analyse(&image).unwrap();
    analysis.primary.expect("a face").embedding
}

#[test]
fn forged_replayed_and_foreign_binding_requests_are_refused() {
    let (id, client) = enrolled("clean/obama.jpg");
    let state = recovery::client_state(&client).unwrap();
    let backend = Client::new(&backend_url(), API_KEY).unwrap();
    let device = KeyFile::ephemeral().unwrap();
    let genuine = recovery::probe(&state, &embedding("clean/obama2.jpg"));
    let request =
        |challenge: &str| recovery::bind_request(&id, challenge, &genuine, &device).unwrap();
    let path = format!("/v1/users/{id}/devices");
    let post = |b: &Bind| call("POST", &path, &serde_json::to_value(b).unwrap());

    // Signed by another key than the one it names: refused, the challenge kept.
    let challenge = backend.challenge(&id).unwrap();
    let mut forged = request(&challenge.challenge);
    forged.device_public_key = states::b64(&KeyFile::ephemeral().unwrap().public());
    assert_status(&post(&forged), 400, "signature");
    // Another person's face: refused, and the challenge is spent.
    let impostor = recovery::probe(&state, &embedding("clean/biden.jpg"));
    let wrong = recovery::bind_request(&id, &challenge.challenge, &impostor, &device).unwrap();
    assert_status(&post(&wrong), 403, "does not match");
    assert_status(
        &post(&request(&challenge.challenge)),
        409,
        "used or expired",
    );

    // A genuine request binds once; replayed, it is refused.
    let challenge = backend.challenge(&id).unwrap();
    let genuine_request = request(&challenge.challenge);
    assert_eq!(post(&genuine_request).status, 201);
    assert_status(&post(&genuine_request), 409, "used or expired");
    // A challenge the backend never gave, and one for another user.
    assert_status(&post(&request(&states::b64(&[7; 32]))), 409, "unknown");
    let (other, _) = enrolled("clean/biden.jpg");
    let theirs = backend.challenge(&other).unwrap();
    assert_status(&post(&request(&theirs.challenge)), 409, "unknown");
    assert_eq!(types(&id), ["BACKUP", "SDK"]);
    // Malformed requests are clear 400s.
    let mut bad = genuine_request.clone();
    bad.device_public_key = "AAAA".into();
    assert_status(&post(&bad), 400, "devicePublicKey");
    let mut bad = genuine_request.clone();
    bad.template = states::b64(&[0; 768]);
    assert_status(&post(&bad), 400, "template");
    let r = call(
        "POST",
        &path,
        &json!({ "challenge": genuine_request.challenge }),
    );
    assert_status(&r, 400, "JSON");
}

/// States issued here by the tests' trusted agent, sealed to `sealing`, made at `now`.
fn issued(sealing: &SealingKey, now: u64) -> String {
    let identity = KeyFile::load_or_create(&common::identity_key()).unwrap();
    let issuer = Issuer::new(identity, sealing.public().clone());
    let mut rng = ChaCha20Rng::from_seed(states::random_bytes().unwrap());
    let e = embedding("clean/obama.jpg");
    issuer
        .issue(
            &e.vector,
            Scenario::Selfie,
            ClientType::Backup,
            now,
            &mut rng,
        )
        .unwrap()
        .server_state
}

#[test]
fn tampered_untrusted_misdirected_expired_and_version_1_states_are_refused() {
    let (_, client, server) = enrol_offline("clean/obama.jpg");
    let register = |state: &str| call("POST", "/v1/users", &json!({ "serverState": state }));
    let mut tampered = server.clone().into_bytes();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    assert_status(
        &register(std::str::from_utf8(&tampered).unwrap()),
        400,
        "serverState",
    );
    assert_status(&register(&server[..server.len() / 2]), 400, "serverState");
    assert_status(&register(&client), 400, "rcs2");
    assert_status(
        &register("rcs1.eyJrZXlsZXNzSWQiOiJrIn0"),
        400,
        "no longer accepted",
    );
    // Well signed, but by an agent the backend does not trust.
    let stranger = KeyFile::ephemeral().unwrap();
    let payload = states::decode::<ServerState>(&server).unwrap().state;
    assert_status(
        &register(&states::encode(&payload, &stranger)),
        403,
        "trust",
    );
    // Signed by a trusted agent, but sealed to another backend, or too old.
    let elsewhere = SealingKey::from_secret(&[8; 32]);
    assert_status(
        &register(&issued(&elsewhere, SystemClock.now())),
        400,
        "sealed to",
    );
    let old = SystemClock.now() - REGISTRATION_WINDOW_SECONDS - 10;
    assert_status(
        &register(&issued(&common::sealing_key(), old)),
        400,
        "expired",
    );
    // None of these registered the user.
    let id = payload.keyless_id;
    let r = call("GET", &format!("/v1/users/{id}/devices"), &Value::Null);
    assert_eq!(r.status, 404);

    // A tampered or truncated client state is refused on the device.
    assert_eq!(register(&server).status, 201);
    let mut state = states::decode::<ClientState>(&client).unwrap();
    state.state.seed = [0; 32];
    let stranger_signed = states::encode(&state.state, &stranger);
    let forged = stranger_signed.replacen(
        &states::b64(&stranger.public()),
        &states::b64(&state.agent),
        1,
    );
    let device_key = scratch().join("d4.key");
    let (code, out) = recover(&forged, "clean/obama.jpg", &device_key);
    assert_eq!(code, 2, "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("signature"),
        "{out}"
    );
    let (code, _) = recover(&client[..client.len() - 9], "clean/obama.jpg", &device_key);
    assert_eq!(code, 2);
    let (code, out) = recover(
        "rcc1.eyJrZXlsZXNzSWQiOiJrIn0",
        "clean/obama.jpg",
        &device_key,
    );
    assert_eq!(code, 2);
    assert!(
        out["error"]
            .as_str()
            .unwrap()
            .contains("no longer accepted"),
        "{out}"
    );
    assert_eq!(types(&id), ["BACKUP"]);
}

#[test]
fn every_backend_call_needs_the_api_key() {
    let (id, _) = enrolled("clean/obama.jpg");
    for (method, path) in [
        ("GET", "/health-check".to_string()),
        ("POST", "/v1/users".to_string()),
        ("POST", "/v1/uncommitted-users".to_string()),
        ("POST", format!("/v1/uncommitted-users/{id}/commit")),
        ("GET", format!("/v1/users/{id}/devices")),
        ("POST", format!("/v1/users/{id}/devices")),
        ("POST", format!("/v1/users/{id}/challenges")),
        ("POST", format!("/v1/users/{id}/unlock")),
        ("DELETE", format!("/v1/users/{id}")),
        ("DELETE", format!("/v1/users/{id}/devices/x")),
        ("GET", "/no/such/path".to_string()),
    ] {
        let none = backend().request(method, &path, &[], b"{}");
        assert_status(&none, 401, "required");
        let wrong = backend().request(method, &path, &[("X-Api-Key", "nope")], b"{}");
        assert_status(&wrong, 401, "wrong key");
        // Each key opens its own calls only.
        let management = path.ends_with("/unlock") || (method == "DELETE" && path.ends_with(&id));
        let other = if management { API_KEY } else { ADMIN_KEY };
        let crossed = backend().request(method, &path, &[("X-Api-Key", other)], b"{}");
        assert_status(&crossed, 401, "wrong key");
    }
    assert_eq!(types(&id), ["BACKUP"]);
    assert_eq!(call("GET", "/health-check", &Value::Null).status, 200);
    assert_status(&call("PUT", "/v1/users", &Value::Null), 405, "POST");
    assert_status(
        &call("GET", "/v1/users/a/b/c/d/e", &Value::Null),
        404,
        "no such",
    );
    assert_status(
        &call("GET", "/v1/users/bad%20id/devices", &Value::Null),
        404,
        "",
    );
}

#[test]
fn online_enrolment_with_the_backend_down_or_refusing_is_503_or_502() {
    let image = fixture("clean/obama.jpg");
    // Nothing listens on the port of a listener just closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let agent = Server::agent(&[("AUTH_SERVER_URL", &down), ("AUTH_SERVER_API_KEY", API_KEY)]);
    let r = agent.post("/v1/online-enrollment", "SELFIE", &image);
    assert_status(&r, 503, "cannot be reached");
    assert!(r.header("Retry-After").is_some());

    let url = backend_url();
    let wrong_key = Server::agent(&[("AUTH_SERVER_URL", &url), ("AUTH_SERVER_API_KEY", "nope")]);
    let r = wrong_key.post("/v1/online-enrollment", "SELFIE", &image);
    assert_status(&r, 502, "401");

    // An agent the backend does not trust: refused, and nothing is registered.
    let untrusted_key = scratch().join("untrusted.key");
    let untrusted = Server::agent(&[
        ("AUTH_SERVER_URL", &url),
        ("AUTH_SERVER_API_KEY", API_KEY),
        ("IDENTITY_KEY_FILE", untrusted_key.to_str().unwrap()),
    ]);
    let r = untrusted.post("/v1/online-enrollment", "SELFIE", &image);
    assert_status(&r, 502, "does not trust");
    let stranger = KeyFile::load_or_create(&untrusted_key).unwrap().public();
    let sql = "SELECT count(*) FROM users WHERE hex(agent_key) = ?1";
    let hex: String = stranger.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(count(sql, &hex), 0);
}

/// The states of an enrolment are dated by the enroller's clock, and the server state
/// expires one registration window later.
#[test]
fn states_are_dated_by_the_enrollers_clock() {
    let at = 1_700_000_000;
    let enroller = common::new_enroller().with_clock(Arc::new(ManualClock::at(at)));
    let image = fixture("clean/obama.jpg");
    let options = DecodeOptions::file(50_000_000);
    let states = enroller
        .enroll(&image, Scenario::Selfie, ClientType::Backup, &options)
        .unwrap()
        .into_result()
        .unwrap();
    let client = states::decode::<ClientState>(&states.client_state)
        .unwrap()
        .state;
    let server = states::decode::<ServerState>(&states.server_state)
        .unwrap()
        .state;
    assert_eq!((client.iat, server.iat), (at, at));
    assert_eq!(server.exp, at + REGISTRATION_WINDOW_SECONDS);
}

/// `PRAGMA integrity_check` of a backend database, and its users without their
/// enrolment device or not committed (half-registered).
fn database_health(db: &Path) -> (String, i64) {
    let db = rusqlite::Connection::open(db).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let half: i64 = db
        .query_row(
            "SELECT count(*) FROM users u WHERE u.committed = 0 OR NOT EXISTS \
             (SELECT 1 FROM devices d WHERE d.keyless_id = u.keyless_id \
              AND d.type IN ('BACKUP', 'TEMPORARY'))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (check, half)
}

#[test]
fn a_backend_killed_during_an_online_enrolment_gives_503_and_registers_nothing() {
    let backend = start_backend("killed.db", &[]);
    let url = format!("http://{}", backend.addr);
    let agent = Server::agent(&[("AUTH_SERVER_URL", &url), ("AUTH_SERVER_API_KEY", API_KEY)]);
    // Frozen, the backend takes the agent's connection (in the kernel) and never answers;
    // then it dies while the agent waits.
    backend.signal(libc::SIGSTOP);
    let enrolment = std::thread::spawn(move || {
        let r = agent.post(
            "/v1/online-enrollment",
            "SELFIE",
            &fixture("clean/obama.jpg"),
        );
        (r.status, r.json(), r.header("Retry-After").is_some())
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    backend.signal(libc::SIGKILL);
    let (status, body, retry_after) = enrolment.join().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{body}"
    );
    assert!(retry_after);
    let db = scratch().join("killed.db");
    let users: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 0);
    assert_eq!(database_health(&db), ("ok".to_string(), 0));
}

#[test]
fn kill_9_during_a_burst_of_registrations_loses_no_acknowledged_one() {
    let db = scratch().join("burst.db");
    let backend = start_backend("burst.db", &[]);
    let url = format!("http://{}", backend.addr);
    let photos = ["clean/obama.jpg", "clean/obama2.jpg", "clean/biden.jpg"];
    let states: Vec<String> = (0..60).map(|i| enrol_offline(photos[i % 3]).2).collect();
    // Four clients register without pause; the backend is killed after 20 answers.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = states
        .chunks(15)
        .map(|chunk| {
            let (chunk, url) = (chunk.to_vec(), url.clone());
            let acknowledged = std::sync::Arc::clone(&acknowledged);
            std::thread::spawn(move || {
                let client = Client::new(&url, API_KEY).unwrap();
                for state in chunk {
                    match client.register(&state) {
                        Ok(id) => acknowledged.lock().unwrap().push(id),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    backend.signal(libc::SIGKILL);
    for c in clients {
        c.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() < states.len(),
        "the burst ended before the kill"
    );
    assert_eq!(database_health(&db), ("ok".to_string(), 0));
    // Restarted on the same file: every acknowledged user is there, committed.
    drop(backend);
    let restarted = start_backend("burst.db", &[]);
    let client = Client::new(&format!("http://{}", restarted.addr), API_KEY).unwrap();
    for id in &acknowledged {
        assert_eq!(client.devices(id).unwrap().len(), 1, "{id}");
    }
    assert_eq!(database_health(&db), ("ok".to_string(), 0));
    eprintln!(
        "{} registrations acknowledged before the kill, all present",
        acknowledged.len()
    );
}

/// With no key configured, agent and backend on one machine share the sealing key pair of
/// the state directory: the agent says at start which key it seals to, and a backend
/// there registers its states.
#[test]
fn an_unconfigured_agent_seals_to_the_local_backend() {
    let dir = scratch().join("local-state");
    let state_dir = dir.to_str().unwrap();
    let start = |command: &str, env: &[(&str, &str)]| {
        let mut cmd = Server::command(command, "127.0.0.1", &[], env);
        cmd.env_remove("SEALING_KEY_FILE")
            .env("STATE_DIRECTORY", state_dir);
        Server::start(cmd)
    };
    let agent = start("serve", &[]);
    let key_file = dir.join("sealing.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let id = states::b64(&SealingKey::load_or_create(&key_file).unwrap().public().id());
    assert!(
        agent.logs(&format!("sealed to backend key {id}")),
        "{}",
        agent.log.lock().unwrap()
    );
    let r = agent.enroll("SELFIE", &fixture("clean/obama.jpg"));
    assert_eq!(r.status, 200);
    let server = r.json()["serverState"].as_str().unwrap().to_string();
    let agents = common::agent_public_key();
    let backend = start(
        "backend",
        &[
            ("BACKEND_API_KEY", API_KEY),
            ("TRUSTED_AGENT_KEYS", &agents),
        ],
    );
    let client = Client::new(&format!("http://{}", backend.addr), API_KEY).unwrap();
    let id = r.json()["keylessId"].as_str().unwrap().to_string();
    assert_eq!(client.register(&server).unwrap(), id);
    // Without an admin key, management calls are off, whatever key they carry.
    for key in [API_KEY, "anything"] {
        let path = format!("/v1/users/{id}");
        let r = backend.request("DELETE", &path, &[("X-Api-Key", key)], b"");
        assert_status(&r, 403, "BACKEND_ADMIN_KEY");
    }
    assert_eq!(client.devices(&id).unwrap().len(), 1);
}

/// The backend refuses to start with an admin key that devices would hold too.
#[test]
fn the_admin_key_must_differ_from_the_api_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_recognize-agent"))
        .args(["backend", "--port", "0"])
        .env("BACKEND_API_KEY", API_KEY)
        .env("BACKEND_ADMIN_KEY", API_KEY)
        .env("TRUSTED_AGENT_KEYS", common::agent_public_key())
        .env("DATABASE", scratch().join("never.db"))
        .env("SEALING_KEY_FILE", common::sealing_key_file())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("BACKEND_ADMIN_KEY must differ"), "{stderr}");
}
