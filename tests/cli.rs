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

/// Runs the agent with `args`; its exit code, stdout and stderr.
fn agent_text(args: &[&str]) -> (i32, String, String) {
    let key = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-identity.key");
    let out = Command::new(env!("CARGO_BIN_EXE_recognize-agent"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("IDENTITY_KEY_FILE", key)
        .env_remove("AUTH_SERVER_URL")
        .env_remove("AUTH_SERVER_API_KEY")
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
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
    let state = scratch("captured.state", v["clientState"].as_str().unwrap());
    assert!(v["serverState"].is_string());
    let (code, out) = verify(&state, "clean/obama_dark.jpg");
    assert_eq!((code, &out["match"]), (0, &serde_json::json!(true)));
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
