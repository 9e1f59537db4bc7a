//! The command line: `enroll` prints the endpoint's JSON (exit 0 / 2 for 200 / 422),
//! `verify` tells whether a face recovers a client state's key (exit 0 / 1 / 2),
//! `identity` prints the key that signs the states.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn fixture(file: &str) -> String {
    format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the agent with `args`; its exit code and JSON output.
fn agent(args: &[&str]) -> (i32, serde_json::Value) {
    let key = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-identity.key");
    let out = Command::new(env!("CARGO_BIN_EXE_recognize-agent"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("IDENTITY_KEY_FILE", key)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json)
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

fn verify(state: &Path, image: &str) -> (i32, serde_json::Value) {
    let state = state.to_str().unwrap();
    agent(&["verify", "--client-state", state, &fixture(image)])
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

#[test]
fn states_are_signed_by_the_printed_identity_and_hold_no_embedding() {
    let (code, id) = agent(&["identity"]);
    assert_eq!(code, 0);
    let (_, v) = enroll("clean/obama.jpg", "SELFIE");
    for (field, prefix) in [("clientState", "rcc1."), ("serverState", "rcs1.")] {
        let text = v[field].as_str().unwrap();
        let json = URL_SAFE_NO_PAD
            .decode(text.strip_prefix(prefix).unwrap())
            .unwrap();
        let state: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(state["agentKey"], id["publicKey"], "{field}");
        assert_eq!(state["keylessId"], v["keylessId"], "{field}");
        // Only short strings and numbers: no vector of floats anywhere.
        let object = state.as_object().unwrap();
        assert!(
            object.values().all(|f| f.is_string() || f.is_u64()),
            "{field}"
        );
    }
}

#[test]
fn verify_matches_the_same_person_only() {
    let (_, v) = enroll("clean/obama.jpg", "SELFIE");
    let state = v["clientState"].as_str().unwrap();
    let path = scratch("obama.state", state);
    for same in ["clean/obama_dark.jpg", "clean/obama2.jpg"] {
        let (code, out) = verify(&path, same);
        assert_eq!(
            (code, &out["match"]),
            (0, &serde_json::json!(true)),
            "{same}"
        );
        assert_eq!(out["keylessId"], v["keylessId"]);
        assert_eq!(out["type"], "BACKUP");
    }
    let (code, out) = verify(&path, "clean/biden.jpg");
    assert_eq!((code, &out["match"]), (1, &serde_json::json!(false)));
    // No face, a damaged state, a truncated one: errors, exit 2.
    let (code, out) = verify(&path, "missing/coffee.jpg");
    assert_eq!(code, 2, "{out}");
    assert!(out["error"].as_str().unwrap().contains("face"));
    let mut tampered = state.as_bytes().to_vec();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = scratch("tampered.state", std::str::from_utf8(&tampered).unwrap());
    let (code, out) = verify(&tampered, "clean/obama.jpg");
    assert_eq!(code, 2, "{out}");
    let truncated = scratch("truncated.state", &state[..state.len() / 2]);
    let (code, out) = verify(&truncated, "clean/obama.jpg");
    assert_eq!(code, 2, "{out}");
}
