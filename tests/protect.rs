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
