//! The fuzzy commitment on real faces: the same person's other photos and controlled
//! variants give the secret back, another person's face does not.

mod common;

use common::{enroller, fixture};
use recognize_agent::protect::sketch::Sketch;
use recognize_agent::vision::decode::{self, DecodeOptions};
use recognize_agent::vision::embed::Embedding;

fn embedding(name: &str) -> Embedding {
    let image = decode::decode(&fixture(name), &DecodeOptions::file(50_000_000)).unwrap();
    let analysis = enroller().models.analyse(&image).unwrap();
    analysis
        .primary
        .unwrap_or_else(|| panic!("{name}: no face"))
        .embedding
}

#[test]
fn the_same_person_recovers_the_secret_and_others_do_not() {
    let (sketch, secret) = Sketch::enrol(&embedding("clean/obama.jpg")).unwrap();
    for same in [
        "clean/obama.jpg",
        "clean/obama_dark.jpg",
        "clean/obama_bright.jpg",
        "clean/obama_tilt.jpg",
        "clean/obama2.jpg",
    ] {
        let got = sketch.recover(&embedding(same));
        assert_eq!(got.as_deref(), Some(&*secret), "{same} should recover");
    }
    for other in [
        "clean/biden.jpg",
        "clean/astronaut.jpg",
        "clean/biden_dark.jpg",
    ] {
        assert!(
            sketch.recover(&embedding(other)).is_none(),
            "{other} must not recover"
        );
    }
}

/// Two enrolments of the same photo share nothing: their helper data agree on about half
/// the bits (chance), their seeds and bit selections differ.
#[test]
fn two_enrolments_of_one_photo_are_unlinkable() {
    let face = embedding("clean/obama.jpg");
    let (a, _) = Sketch::enrol(&face).unwrap();
    let (b, _) = Sketch::enrol(&face).unwrap();
    let agree = a
        .helper
        .iter()
        .zip(&b.helper)
        .filter(|(x, y)| x == y)
        .count();
    let share = agree as f64 / a.helper.len() as f64;
    // 511 fair coins: 0.5 ± 0.022 (one standard deviation); 0.4 to 0.6 is 4.5 of them.
    assert!(
        (0.4..0.6).contains(&share),
        "helper data agree on {share:.3}"
    );
    assert_ne!(a.seed, b.seed);
    let common = a
        .selection
        .iter()
        .filter(|i| b.selection.contains(i))
        .count();
    // Independent selections of 511 of 2047 share about a quarter (128 ± 10).
    assert!(
        (80..180).contains(&common),
        "{common} kept projections in common"
    );
}
