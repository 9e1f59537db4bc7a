//! The board presets and documented settings in `board/` against the real binary.

use std::path::Path;
use std::process::Command;

use crate::common::server::Server;
use crate::common::{fixture, fixtures, png_claiming};
use recognize_agent::frames::negotiate::Resolution;

/// The `KEY=VALUE` lines of a board file; with `commented`, the `#KEY=` ones too.
fn variables(file: &str, commented: bool) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("board")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines()
        .filter_map(|l| match l.strip_prefix('#') {
            Some(rest) if commented => rest.split_once('='),
            Some(_) => None,
            None => l.split_once('='),
        })
        .filter(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn help(command: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_recognize-agent"))
        .args([command, "--help"])
        .output()
        .expect("run --help");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Read outside clap: the filter overrides, the models directory's default, the log
/// filter, systemd's state directory and tract's NEON switch.
fn read_elsewhere(name: &str) -> bool {
    ["FILTERS_OFF_", "FILTERS_ON_", "MIN_INTEROCULAR_"]
        .iter()
        .any(|p| name.starts_with(p))
        || [
            "MODELS_DIR",
            "MODEL_PRECISION",
            "RUST_LOG",
            "STATE_DIRECTORY",
            "TRACT_CPU_ARM32_NEON",
        ]
        .contains(&name)
}

#[test]
fn every_variable_in_board_files_is_one_the_agent_reads() {
    let serve = help("serve");
    #[cfg(feature = "backend")]
    let backend = help("backend");
    #[cfg(not(feature = "backend"))]
    let backend = String::new();
    for (file, help) in [
        ("recognize-agent.env", &serve),
        ("pi4.env", &serve),
        ("pi5.env", &serve),
        ("jetson-nano.env", &serve),
        ("recognize-backend.env", &backend),
    ] {
        if help.is_empty() {
            continue;
        }
        let vars = variables(file, true);
        assert!(vars.len() >= 4, "{file}: {vars:?}");
        for (name, _) in vars {
            assert!(
                read_elsewhere(&name)
                    || [format!("[env: {name}="), format!("[env: {name}]")]
                        .iter()
                        .any(|shown| help.contains(shown)),
                "{file}: {name} is not a setting of the agent"
            );
        }
    }
}

#[test]
fn presets_set_the_agents_limits_model_precision_and_camera() {
    // 4 400 × 4 000 = 17.6 MP: over the 16 MP of the Pi 4 and Jetson presets (413), under
    // the 25 MP of the Pi 5's (where the garbage pixel data is then refused as such, 400).
    let (width, height) = (4_400u64, 4_000u64);
    let large = png_claiming(width as u32, height as u32);
    let mut statuses = Vec::new();
    for file in ["pi4.env", "pi5.env", "jetson-nano.env"] {
        let vars = variables(file, false);
        let value = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let var = |name: &str| -> u64 {
            value(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{file}: {name}"))
        };
        let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // Camera defaults for kiosk mode: a mode to ask for, and the assessment rate the
        // kiosk takes (shown with frames from a file).
        let resolution = value("CAMERA_RESOLUTION").unwrap_or_else(|| panic!("{file}"));
        assert!(
            resolution.parse::<Resolution>().is_ok(),
            "{file}: {resolution}"
        );
        assert!(
            var("CAMERA_FPS") > 0 && value("CAMERA_DEVICE").is_some(),
            "{file}"
        );
        let frames = fixtures().join("clean/obama.jpg");
        let args = ["--kiosk", "--frames", frames.to_str().unwrap()];
        let kiosk = Server::spawn_with("serve", "127.0.0.1", &args, &env);
        let rate = format!("kiosk on /kiosk: {} frames assessed", var("ANALYSIS_FPS"));
        assert!(kiosk.logs(&rate), "{file}: {rate}");
        drop(kiosk);
        let agent = Server::agent(&env);
        let started = format!(
            "{} enrolments at once, {} waiting",
            var("MAX_CONCURRENCY"),
            var("MAX_WAIT")
        );
        assert!(agent.logs(&started), "{file}: {started}");
        let loaded = format!("({})", value("MODEL_PRECISION").unwrap_or("f32"));
        assert!(agent.logs(&loaded), "{file}: models loaded {loaded}");
        let r = agent.enroll("SELFIE", &fixture("clean/obama.jpg"));
        assert_eq!(
            r.status,
            200,
            "{file}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let r = agent.enroll("SELFIE", &large);
        let large_status = if width * height > var("MAX_PIXELS") {
            413
        } else {
            400
        };
        assert_eq!(
            r.status,
            large_status,
            "{file}: {}",
            String::from_utf8_lossy(&r.body)
        );
        statuses.push(large_status);
    }
    // Both sides of the limit were exercised.
    assert!(statuses.contains(&413) && statuses.contains(&400));
}
