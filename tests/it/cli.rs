//! The command line: `enroll` prints the endpoint's JSON (exit 0 / 2 for 200 / 422),
//! `identity` prints the key that signs the states, `sealing-key` the backend key their
//! templates are sealed to; `recover` refuses states it cannot use before it calls
//! anyone.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use recognize_agent::vision::decode::{self, DecodeOptions};

fn fixture(file: &str) -> String {
    format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// The agent with `args`, its keys and state in the tests' scratch directory, no backend.
fn command(args: &[&str]) -> Command {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recognize-agent"));
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .env("IDENTITY_KEY_FILE", scratch.join("cli-identity.key"))
        .env("SEALING_KEY_FILE", common::sealing_key_file())
        .env("STATE_DIRECTORY", scratch.join("cli-state"))
        .env_remove("BACKEND_SEALING_KEY")
        .env_remove("AUTH_SERVER_URL")
        .env_remove("AUTH_SERVER_API_KEY");
    cmd
}

/// Runs the agent with `args`; its exit code and JSON output.
fn agent(args: &[&str]) -> (i32, serde_json::Value) {
    let out = command(args).output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json)
}

/// Runs `cmd`; its exit code, stdout and stderr.
fn run_text(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

fn enroll(file: &str, scenario: &str) -> (i32, serde_json::Value) {
    agent(&["enroll", "--scenario", scenario, &fixture(file)])
}

/// Writes `text` to a scratch file named `name`.
fn scratch(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `recover` with the client state in `state` against a backend nobody runs.
fn recover(state: &Path, image: &str) -> (i32, serde_json::Value) {
    let state = state.to_str().unwrap();
    let args = [
        "recover",
        "--backend",
        "http://127.0.0.1:9",
        "--api-key",
        "k",
    ];
    agent(&[&args[..], &["--client-state", state, &fixture(image)]].concat())
}

/// The score the backend would find for `image` against the states in `v`.
fn score(v: &serde_json::Value, image: &str) -> f32 {
    let bytes = std::fs::read(fixture(image)).unwrap();
    let decoded = decode::decode(&bytes, &DecodeOptions::file(50_000_000)).unwrap();
    let face = common::enroller().models.analyse(&decoded).unwrap().primary;
    let state = |k: &str| v[k].as_str().unwrap().to_string();
    common::match_score(
        &state("clientState"),
        &state("serverState"),
        &face.unwrap().embedding,
    )
}

#[test]
fn enroll_prints_states_or_filters_with_exit_codes() {
    let (code, v) = enroll("clean/biden.jpg", "SELFIE");
    assert_eq!(code, 0);
    assert!(
        v["keylessId"].is_string() && v["clientState"].is_string() && v["serverState"].is_string()
    );
    let (code, v) = enroll("occluded/biden_sunglasses.jpg", "SELFIE");
    assert_eq!(code, 2);
    assert_eq!(v["filters"]["faceIsOccluded"], "TRIGGERED");
    let (code, _) = enroll("no-such-file.jpg", "SELFIE");
    assert_eq!(code, 1);
}

/// The parts of a version-2 state: prefix, kid, payload (parsed).
fn parts(text: &str) -> (String, String, serde_json::Value) {
    let parts: Vec<&str> = text.split('.').collect();
    assert_eq!(parts.len(), 4, "{text}");
    let json = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let payload = serde_json::from_slice(&json).unwrap();
    (parts[0].into(), parts[1].into(), payload)
}

#[test]
fn states_are_signed_by_the_printed_identity_and_sealed_to_the_printed_backend_key() {
    let (code, id) = agent(&["identity"]);
    assert_eq!(code, 0);
    let (code, sealing) = agent(&["sealing-key"]);
    assert_eq!(code, 0);
    let (_, v) = enroll("clean/obama.jpg", "SELFIE");
    let (prefix, kid, client) = parts(v["clientState"].as_str().unwrap());
    assert_eq!(
        (prefix.as_str(), &kid),
        ("rcc2", &id["publicKey"].as_str().unwrap().to_string())
    );
    // The client state: ids, type, pipeline, seed, time; nothing of the face.
    let mut keys: Vec<&String> = client.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["iat", "keylessId", "model", "seed", "type"]);
    assert_eq!(client["keylessId"], v["keylessId"]);
    let (prefix, kid, server) = parts(v["serverState"].as_str().unwrap());
    assert_eq!(prefix, "rcs2");
    assert_eq!(kid, id["publicKey"].as_str().unwrap());
    assert_eq!(server["sealedTo"], sealing["keyId"]);
    assert_eq!(server["keylessId"], v["keylessId"]);
    assert!(server["exp"].as_u64().unwrap() > server["iat"].as_u64().unwrap());
    // The template is sealed: 192 floats and the AEAD tag.
    let sealed = URL_SAFE_NO_PAD
        .decode(server["template"].as_str().unwrap())
        .unwrap();
    assert_eq!(sealed.len(), 192 * 4 + 16);
    // And it matches the same person, not another.
    assert!(score(&v, "clean/obama2.jpg") >= common::threshold());
    assert!(score(&v, "clean/biden.jpg") < common::threshold());
}

#[test]
fn recover_refuses_unusable_states_before_calling_the_backend() {
    let (_, v) = enroll("clean/obama.jpg", "SELFIE");
    let state = v["clientState"].as_str().unwrap();
    let mut tampered = state.as_bytes().to_vec();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let cases = [
        (
            "tampered.state",
            String::from_utf8(tampered).unwrap(),
            "signature",
        ),
        (
            "truncated.state",
            state[..state.len() / 2].to_string(),
            "not a version-2 state",
        ),
        (
            "v1.state",
            "rcc1.eyJrZXlsZXNzSWQiOiJrIn0".to_string(),
            "no longer accepted",
        ),
        (
            "server.state",
            v["serverState"].as_str().unwrap().to_string(),
            "rcc2",
        ),
    ];
    for (name, text, says) in cases {
        let (code, out) = recover(&scratch(name, &text), "clean/obama.jpg");
        assert_eq!(code, 2, "{name}: {out}");
        let error = out["error"].as_str().unwrap();
        assert!(error.contains(says), "{name}: {error}");
    }
    // A good state, then no face: an error too; then the unreachable backend.
    let good = scratch("good.state", state);
    let (code, out) = recover(&good, "missing/coffee.jpg");
    assert_eq!(code, 2, "{out}");
    assert!(out["error"].as_str().unwrap().contains("face"), "{out}");
    let (code, out) = recover(&good, "clean/obama2.jpg");
    assert_eq!(code, 2, "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("cannot be reached"),
        "{out}"
    );
}

/// Runs the agent with `args`; its exit code, stdout and stderr.
fn agent_text(args: &[&str]) -> (i32, String, String) {
    run_text(command(args))
}

#[test]
fn capture_enrols_the_best_frame_and_writes_only_what_is_asked() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capture-cli");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("frames")).unwrap();
    for (i, f) in ["missing/brick.jpg", "small/obama.jpg", "clean/obama.jpg"]
        .iter()
        .enumerate()
    {
        std::fs::copy(fixture(f), dir.join(format!("frames/{i}.jpg"))).unwrap();
    }
    let (output, frame) = (dir.join("states.json"), dir.join("chosen.png"));
    let frames = dir.join("frames");
    let args = [
        "capture",
        "--analysis-fps",
        "1000",
        "--frames",
        frames.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = agent_text(
        &[
            &args[..],
            &[
                "--output",
                output.to_str().unwrap(),
                "--save-frame",
                frame.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    // The person was told what to do, in order.
    let advice: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        advice,
        [
            "Step in front of the camera and look at it",
            "Move closer",
            "Ready"
        ]
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&output).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    assert!(score(&v, "clean/obama_dark.jpg") >= common::threshold());
    let saved = image::open(&frame).unwrap();
    assert_eq!(
        (saved.width(), saved.height()),
        image::image_dimensions(fixture("clean/obama.jpg")).unwrap()
    );
    // Nothing else was written.
    let mut written: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    written.sort();
    assert_eq!(written, ["chosen.png", "frames", "states.json"]);
}

#[test]
fn capture_without_a_usable_frame_or_source_says_why() {
    let missing = fixture("missing");
    let (code, v) = agent(&["capture", "--analysis-fps", "1000", "--frames", &missing]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["guidance"], "STEP_IN");
    assert!(v["error"].as_str().unwrap().contains("11 frames"), "{v}");
    let (code, _, stderr) = agent_text(&["capture", "--frames", &fixture("no-such-dir")]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no-such-dir"), "{stderr}");
    // No --frames: the camera, which this machine does not have (or this build cannot
    // drive).
    let (code, _, stderr) = agent_text(&["capture", "--camera", "7"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("camera"), "{stderr}");
    let (code, _, stderr) = agent_text(&["capture", "--online", "--frames", &missing]);
    assert_eq!(code, 1);
    assert!(stderr.contains("AUTH_SERVER_URL"), "{stderr}");
}

/// `enroll` with BACKEND_SEALING_KEY set: its exit code, stdout and stderr.
fn enroll_sealed_to(key: &str) -> (i32, String, String) {
    let mut cmd = command(&[
        "enroll",
        "--scenario",
        "SELFIE",
        &fixture("clean/obama.jpg"),
    ]);
    cmd.env("RUST_LOG", "info").env("BACKEND_SEALING_KEY", key);
    run_text(cmd)
}

#[test]
fn states_are_sealed_to_the_configured_backend_key_and_a_bad_one_is_refused() {
    let elsewhere = recognize_agent::protect::seal::SealingKey::from_secret(&[4; 32]);
    let public = URL_SAFE_NO_PAD.encode(elsewhere.public().to_bytes());
    let (code, stdout, stderr) = enroll_sealed_to(&public);
    assert_eq!(code, 0, "{stderr}");
    let id = URL_SAFE_NO_PAD.encode(elsewhere.public().id());
    assert!(
        stderr.contains(&format!("sealed to backend key {id} (BACKEND_SEALING_KEY)")),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let (_, _, server) = parts(v["serverState"].as_str().unwrap());
    assert_eq!(server["sealedTo"], id.as_str());
    // Sealed to that key indeed: it opens there, and not with the tests' own key.
    use recognize_agent::protect::states::{self, ServerState};
    let state = states::decode::<ServerState>(v["serverState"].as_str().unwrap());
    let state = state.unwrap().state;
    assert!(state.open_template(&elsewhere).is_ok());
    assert!(state.open_template(&common::sealing_key()).is_err());
    // Not a key, and a key no box can be opened for (a low-order point).
    for bad in ["AAAA", &URL_SAFE_NO_PAD.encode([0u8; 32])] {
        let (code, stdout, stderr) = enroll_sealed_to(bad);
        assert_eq!(code, 1, "{stdout}");
        assert!(
            stderr.contains("BACKEND_SEALING_KEY: not a usable"),
            "{stderr}"
        );
    }
}
