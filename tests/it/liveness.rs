//! The optional liveness check, on real photos and on simulated recaptures of them
//! (`tests/fixtures/spoof/`, made by `scripts/spoofs.py`): what it refuses, in which
//! scenario, with which answer.

use std::sync::OnceLock;

use crate::common::server::Server;
use crate::common::{self, enroller, fixture};
use recognize_agent::contract::{FilterStatus, Scenario};
use recognize_agent::enroll::{Enroller, LivenessCheck, Outcome};
use recognize_agent::protect::states::ClientType;
use recognize_agent::vision::decode::{self, DecodeOptions};
use recognize_agent::vision::filters::Policy;
use recognize_agent::vision::liveness::{DEFAULT_THRESHOLD, Liveness};
use recognize_agent::vision::{Models, Precision, default_models_dir};

/// An enroller with the liveness check on at the default threshold.
fn checking() -> &'static Enroller {
    static ENROLLER: OnceLock<Enroller> = OnceLock::new();
    ENROLLER.get_or_init(|| {
        let dir = default_models_dir();
        let models = Models::load(&dir, Precision::F32).unwrap();
        let model = Liveness::load(&dir, Precision::F32).unwrap();
        Enroller::new(
            models,
            Scenario::ALL.map(Policy::for_scenario),
            common::issuer(),
        )
        .with_liveness(LivenessCheck {
            model,
            threshold: DEFAULT_THRESHOLD,
        })
    })
}

fn enrol(enroller: &Enroller, file: &str, scenario: Scenario) -> Outcome {
    enroller
        .enroll(
            &fixture(file),
            scenario,
            ClientType::Backup,
            &DecodeOptions::file(25_000_000),
        )
        .unwrap()
}

#[test]
fn recaptured_faces_are_refused_as_selfies_live_ones_enrol() {
    for live in ["clean/obama.jpg", "clean/biden.jpg", "clean/obama3.jpg"] {
        let outcome = enrol(checking(), live, Scenario::Selfie);
        assert!(
            matches!(outcome, Outcome::Enrolled(_)),
            "{live}: {outcome:?}"
        );
    }
    for spoof in ["spoof/obama_print.jpg", "spoof/obama_screen.jpg"] {
        // Every filter passes on the recapture: only the liveness check refuses it.
        let Outcome::NotLive { filters, score, .. } = enrol(checking(), spoof, Scenario::Selfie)
        else {
            panic!("{spoof} is refused as not live");
        };
        assert!(score > DEFAULT_THRESHOLD, "{spoof}: {score}");
        assert!(
            !filters.any_triggered(),
            "{spoof}: a filter triggered: {filters:?}"
        );
        // The check is for selfies only; without it the recapture enrols.
        for (enroller, scenario) in [
            (checking(), Scenario::TrustedSource),
            (enroller(), Scenario::Selfie),
        ] {
            let outcome = enrol(enroller, spoof, scenario);
            assert!(
                matches!(outcome, Outcome::Enrolled(_)),
                "{spoof}: {outcome:?}"
            );
        }
    }
}

#[test]
fn the_decision_does_not_hang_on_the_face_box_rounding() {
    // Half-pixel shifts of the crop change the score of a live face and of a spoof by
    // little: the decision does not hang on rounding.
    let dir = default_models_dir();
    let models = &checking().models;
    let model = Liveness::load(&dir, Precision::F32).unwrap();
    for (file, live) in [("clean/obama.jpg", true), ("spoof/obama_screen.jpg", false)] {
        let image = decode::decode(&fixture(file), &DecodeOptions::file(25_000_000)).unwrap();
        let face = models.analyse(&image).unwrap().primary.unwrap().face;
        for dx in [-0.5f32, 0.0, 0.5] {
            let mut moved = face;
            moved.bbox.x0 += dx;
            moved.bbox.x1 += dx;
            let score = model.score(&image, &moved).unwrap();
            assert_eq!(
                score <= DEFAULT_THRESHOLD,
                live,
                "{file} shifted {dx}: {score}"
            );
        }
    }
}

#[test]
fn a_refused_selfie_is_a_422_saying_liveness_failed_with_the_six_filters() {
    let server = Server::agent(&[("LIVENESS", "true"), ("LIVENESS_THRESHOLD", "0.3")]);
    let post = |file: &str| {
        server.request(
            "POST",
            "/v1/offline-enrollment",
            &[("Scenario", "SELFIE")],
            &fixture(file),
        )
    };
    let refused = post("spoof/obama_screen.jpg");
    assert_eq!(refused.status, 422);
    let json = refused.json();
    assert_eq!(json["title"], "Filter Triggered");
    assert_eq!(json["statusCode"], 422);
    let detail = json["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("Liveness check failed") && detail.contains("threshold 0.30"),
        "{detail}"
    );
    let filters = json["filters"].as_object().unwrap();
    assert_eq!(filters.len(), 6);
    let not_triggered = serde_json::to_value(FilterStatus::NotTriggered).unwrap();
    assert!(filters.values().all(|v| *v == not_triggered), "{filters:?}");

    let live = post("clean/obama.jpg");
    assert_eq!(live.status, 200, "{}", String::from_utf8_lossy(&live.body));
}
