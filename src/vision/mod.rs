//! The face pipeline: decode → detect → align → embed, plus the measurements the filters use.

pub mod align;
pub mod colour;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod filters;
pub mod geometry;
pub mod model;
pub mod occlusion;

use std::path::{Path, PathBuf};

use image::RgbImage;
use tract_onnx::prelude::TractResult;

use detect::{Detector, DetectorConfig, Face, Faces};
use embed::{Embedder, Embedding};
use occlusion::Occlusion;

/// The models, loaded once at start-up and shared read-only by every request.
pub struct Models {
    pub detector: Detector,
    pub embedder: Embedder,
}

/// File names of the default models inside the models directory.
pub const DETECTOR_FILE: &str = "blazeface_back_256.onnx";
pub const EMBEDDER_FILE: &str = "mobilefacenet.onnx";

impl Models {
    pub fn load(dir: &Path) -> TractResult<Models> {
        Ok(Models {
            detector: Detector::load(&dir.join(DETECTOR_FILE), 256, DetectorConfig::default())?,
            embedder: Embedder::load(&dir.join(EMBEDDER_FILE))?,
        })
    }

    /// Measures everything the filters and the template need from one image.
    pub fn analyse(&self, image: &RgbImage) -> TractResult<Analysis> {
        let faces = self.detector.detect(image)?;
        let colourfulness = colour::colourfulness(image);
        let primary = match primary(&faces) {
            Some(face) => {
                let aligned = align::align(image, &face);
                let embedding = self.embedder.embed(&aligned)?;
                let occlusion = occlusion::measure(&aligned);
                Some(PrimaryFace {
                    face,
                    embedding,
                    occlusion,
                })
            }
            None => None,
        };
        Ok(Analysis {
            width: image.width(),
            height: image.height(),
            faces,
            colourfulness,
            primary,
        })
    }
}

/// The largest face, the one an enrolment is about.
fn primary(faces: &Faces) -> Option<Face> {
    faces
        .iter()
        .copied()
        .max_by(|a, b| a.size().total_cmp(&b.size()))
}

/// What the pipeline measured on one image.
#[derive(Debug)]
pub struct Analysis {
    pub width: u32,
    pub height: u32,
    pub faces: Faces,
    /// Hasler–Süsstrunk colourfulness; 0 for a greyscale image.
    pub colourfulness: f32,
    pub primary: Option<PrimaryFace>,
}

/// The enrolled face and its measurements.
#[derive(Debug)]
pub struct PrimaryFace {
    pub face: Face,
    pub embedding: Embedding,
    pub occlusion: Occlusion,
}

/// The models directory: `MODELS_DIR` if given, else `./models`, else the one in the source tree.
pub fn default_models_dir() -> PathBuf {
    let local = PathBuf::from("models");
    if local.join(DETECTOR_FILE).exists() {
        local
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models"))
    }
}
