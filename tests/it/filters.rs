//! The six filters measured on every fixture: each must catch ≥ 95 % of the cases made
//! to trigger it and raise ≤ 5 % false alarms on the clean faces. Prints the fixture
//! table of docs/biometrics.md (`cargo test --test it filters:: -- --nocapture`).

use crate::common::{Case, enroller, fixture, manifest};
use recognize_agent::contract::{Filter, FilterStatus, Filters};
use recognize_agent::enroll::Outcome;
use recognize_agent::protect::states::ClientType;
use recognize_agent::vision::decode::DecodeOptions;

fn run(case: &Case) -> Option<Filters> {
    let opts = DecodeOptions {
        base64: false,
        exif_transpose: true,
        max_pixels: 50_000_000,
    };
    match enroller()
        .enroll(
            &fixture(&case.file),
            case.scenario(),
            ClientType::Backup,
            &opts,
        )
        .expect(&case.file)
    {
        Outcome::Enrolled(_) => None,
        Outcome::Filtered(f) => Some(f),
        Outcome::NotLive { .. } => panic!("{}: liveness is off here", case.file),
    }
}

fn status(filters: &Option<Filters>, filter: Filter) -> FilterStatus {
    filters.map_or(FilterStatus::NotTriggered, |f| f.get(filter))
}

#[test]
fn every_filter_catches_its_cases_without_false_alarms() {
    let cases = manifest();
    let results: Vec<(Case, Option<Filters>)> = cases.iter().map(|c| (c.clone(), run(c))).collect();
    let clean: Vec<_> = results
        .iter()
        .filter(|(c, _)| c.file.starts_with("clean/"))
        .collect();
    assert!(
        clean.len() >= 20,
        "need clean faces to measure false alarms"
    );
    let mut failures = Vec::new();
    println!("| filter | triggered cases | caught | clean faces | false alarms |");
    println!("|---|---|---|---|---|");
    for filter in Filter::ALL {
        let name = filter.name();
        let positives: Vec<_> = results
            .iter()
            .filter(|(c, _)| c.triggers.iter().any(|t| t == name))
            .collect();
        let missed: Vec<&str> = positives
            .iter()
            .filter(|(_, f)| status(f, filter) != FilterStatus::Triggered)
            .map(|(c, _)| c.file.as_str())
            .collect();
        let alarms: Vec<&str> = clean
            .iter()
            .filter(|(_, f)| status(f, filter) == FilterStatus::Triggered)
            .map(|(c, _)| c.file.as_str())
            .collect();
        let caught = positives.len() - missed.len();
        println!(
            "| `{name}` | {} | {caught} ({:.0} %) | {} | {} ({:.0} %) |",
            positives.len(),
            100.0 * caught as f64 / positives.len() as f64,
            clean.len(),
            alarms.len(),
            100.0 * alarms.len() as f64 / clean.len() as f64
        );
        if !missed.is_empty() {
            println!("  missed: {missed:?}");
        }
        if !alarms.is_empty() {
            println!("  false alarms: {alarms:?}");
        }
        assert!(positives.len() >= 5, "{name}: too few cases to measure");
        if (caught as f64) < 0.95 * positives.len() as f64 {
            failures.push(format!(
                "{name} caught {caught}/{}: missed {missed:?}",
                positives.len()
            ));
        }
        if alarms.len() as f64 > 0.05 * clean.len() as f64 {
            failures.push(format!("{name} false alarms {alarms:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn clean_faces_enrol_in_every_scenario() {
    for case in manifest()
        .iter()
        .filter(|c| c.file.starts_with("clean/"))
        .take(5)
    {
        for scenario in recognize_agent::contract::Scenario::ALL {
            let opts = DecodeOptions {
                base64: false,
                exif_transpose: true,
                max_pixels: 50_000_000,
            };
            let outcome = enroller()
                .enroll(&fixture(&case.file), scenario, ClientType::Backup, &opts)
                .unwrap();
            assert!(
                matches!(outcome, Outcome::Enrolled(_)),
                "{} as {scenario:?}: {outcome:?}",
                case.file
            );
        }
    }
}

#[test]
fn scenario_policy_shapes_the_outcome() {
    let opts = DecodeOptions {
        base64: false,
        exif_transpose: true,
        max_pixels: 50_000_000,
    };
    let enrol = |file: &str, scenario| {
        enroller()
            .enroll(&fixture(file), scenario, ClientType::Backup, &opts)
            .unwrap()
    };
    use recognize_agent::contract::Scenario::*;
    // A greyscale portrait fails as a selfie, but is fine as a trusted or document portrait.
    match enrol("grey/obama.jpg", Selfie) {
        Outcome::Filtered(f) => assert_eq!(f.image_black_and_white, FilterStatus::Triggered),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        enrol("grey/obama.jpg", TrustedSource),
        Outcome::Enrolled(_)
    ));
    assert!(matches!(
        enrol("grey/obama.jpg", Document),
        Outcome::Enrolled(_)
    ));
    // No face: the face-dependent filters cannot run.
    let Outcome::Filtered(f) = enrol("missing/coffee.jpg", Selfie) else {
        panic!("coffee enrolled")
    };
    assert_eq!(f.face_missing, FilterStatus::Triggered);
    for s in [f.face_is_occluded, f.face_partial, f.face_too_small] {
        assert_eq!(s, FilterStatus::CannotRunOnFrame);
    }
    let Outcome::Filtered(f) = enrol("grey/obama.jpg", Selfie) else {
        unreachable!()
    };
    assert_eq!(f.face_missing, FilterStatus::NotTriggered);
    // TRUSTED_SOURCE turns the colour filter off, and says so.
    let Outcome::Filtered(f) = enrol("occluded/obama_mask_blue.jpg", TrustedSource) else {
        panic!("masked face enrolled")
    };
    assert_eq!(f.image_black_and_white, FilterStatus::TurnedOff);
}
