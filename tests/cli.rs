//! `recognize-agent enroll`: the endpoint's JSON on stdout, exit 0 / 2 for 200 / 422.

use std::process::Command;

fn enroll(file: &str, scenario: &str) -> (i32, serde_json::Value) {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_recognize-agent"))
        .args(["enroll", "--scenario", scenario, &path])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json)
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
