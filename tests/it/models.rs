//! The committed models are the ones `models/README.md` lists, byte for byte, and the
//! variants it keeps hold its accuracy criteria.

use std::path::Path;

use recognize_agent::contract::Scenario;
use recognize_agent::vision::filters::{Policy, evaluate};
use recognize_agent::vision::{Models, Precision, decode, default_models_dir};
use sha2::{Digest, Sha256};

#[test]
fn committed_models_match_their_recorded_sha256() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut checked = 0;
    for line in readme.lines() {
        // Rows of the sums table: | `file.onnx` | `hex` |
        let cells: Vec<&str> = line
            .split('|')
            .map(|c| c.trim().trim_matches('`'))
            .collect();
        if cells.len() == 4 && cells[1].ends_with(".onnx") && cells[2].len() == 64 {
            let bytes =
                std::fs::read(dir.join(cells[1])).unwrap_or_else(|e| panic!("{}: {e}", cells[1]));
            let got: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(got, cells[2], "{} differs from models/README.md", cells[1]);
            checked += 1;
        }
    }
    let onnx = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "onnx")
        })
        .count();
    assert!(
        checked > 0 && checked == onnx,
        "every model file has a recorded sum ({checked} of {onnx})"
    );
}

/// The f16 variant keeps models/README.md's criteria on real photos (one face, two
/// faces, an occluded face): the faces f32 finds and no others, the same filter
/// outcomes, embeddings with a cosine of at least 0.98 to f32's (0.9996 at worst over
/// every fixture, by `scripts/variants`).
#[test]
fn f16_models_find_filter_and_embed_as_f32_does() {
    let dir = default_models_dir();
    let f32 = Models::load(&dir, Precision::F32).unwrap();
    let f16 = Models::load(&dir, Precision::F16).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for photo in [
        "clean/obama.jpg",
        "multiple/obama3_biden.jpg",
        "occluded/biden_sunglasses.jpg",
    ] {
        let bytes = std::fs::read(fixtures.join(photo)).unwrap();
        let image = decode::decode(&bytes, &decode::DecodeOptions::file(50_000_000)).unwrap();
        let (want, got) = (f32.analyse(&image).unwrap(), f16.analyse(&image).unwrap());
        assert_eq!(want.faces.len(), got.faces.len(), "{photo}: faces");
        for (w, g) in want.faces.iter().zip(got.faces.iter()) {
            let shift = w.bbox.x0 - g.bbox.x0;
            assert!(shift.abs() < 2.0, "{photo}: box moved {shift} px");
        }
        for scenario in Scenario::ALL {
            let policy = Policy::for_scenario(scenario);
            assert_eq!(
                serde_json::to_value(evaluate(&want, &policy)).unwrap(),
                serde_json::to_value(evaluate(&got, &policy)).unwrap(),
                "{photo}: filters"
            );
        }
        let (w, g) = (want.primary.unwrap(), got.primary.unwrap());
        let cosine = w.embedding.cosine(&g.embedding);
        assert!(cosine >= 0.98, "{photo}: cosine {cosine}");
        // ... and it does compute in half precision.
        assert_ne!(
            w.embedding.vector, g.embedding.vector,
            "{photo}: f16 as f32"
        );
    }
}
