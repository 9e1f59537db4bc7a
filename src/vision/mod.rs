//! The face pipeline: decode → detect → verify → align → embed, plus the measurements the filters use.

pub mod align;
pub mod colour;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod filters;
pub mod geometry;
pub mod liveness;
pub mod model;
pub mod occlusion;
pub mod sharpness;

use std::path::{Path, PathBuf};

use image::RgbImage;
use tract_nnef::prelude::TractResult;

use detect::{Detector, DetectorConfig, Face, Faces};
use embed::{Embedder, Embedding};
pub use model::Precision;
use occlusion::Occlusion;

/// The models, loaded once at start-up and shared read-only by every request.
pub struct Models {
    pub detector: Detector,
    pub embedder: Embedder,
}

/// The models the agent runs, by name (a file `NAME.nnef.tar` or `NAME.onnx` in the
/// models directory) with their input shapes and the inner tensors read besides their
/// outputs; the last, liveness, only when asked to.
pub const MODELS: [(&str, [usize; 4], &[&str]); 3] = [
    (
        DETECTOR,
        [1, DETECTOR_SIDE as usize, DETECTOR_SIDE as usize, 3],
        &[],
    ),
    (
        EMBEDDER,
        [1, align::ALIGNED as usize, align::ALIGNED as usize, 3],
        &[embed::FEATURE_MAP],
    ),
    (
        liveness::MODEL,
        [1, liveness::SIDE as usize, liveness::SIDE as usize, 3],
        &[],
    ),
];
const DETECTOR: &str = "blazeface_back_256";
const DETECTOR_SIDE: u32 = 256;
const EMBEDDER: &str = "mobilefacenet";

impl Models {
    /// Loads the models from `dir`, each from its NNEF archive if there is one, to run
    /// in `precision`.
    pub fn load(dir: &Path, precision: Precision) -> TractResult<Models> {
        Ok(Models {
            detector: Detector::load(
                &model::file(dir, DETECTOR)?,
                DETECTOR_SIDE,
                precision,
                DetectorConfig::default(),
            )?,
            embedder: Embedder::load(&model::file(dir, EMBEDDER)?, precision)?,
        })
    }

    /// Writes the models of `from` to `to` as NNEF archives; returns their paths.
    pub fn export(from: &Path, to: &Path) -> TractResult<Vec<PathBuf>> {
        MODELS
            .iter()
            .map(|(name, shape, outputs)| model::export(from, to, name, shape, outputs))
            .collect()
    }

    /// Measures everything the filters and the template need from one image.
    pub fn analyse(&self, image: &RgbImage) -> TractResult<Analysis> {
        let mut faces = self.detector.detect(image)?;
        let mut primary = self.verify(image, &mut faces)?;
        if primary.is_none() {
            faces = self.detector.detect_tiled(image)?;
            primary = self.verify(image, &mut faces)?;
        }
        if primary.is_none() {
            faces = self.detector.detect_wide(image)?;
            primary = self.verify(image, &mut faces)?;
        }
        let colourfulness = colour::colourfulness(image);
        Ok(Analysis {
            width: image.width(),
            height: image.height(),
            faces,
            colourfulness,
            primary,
        })
    }

    /// Picks the enrolled face: the candidate with a face's geometry and the largest
    /// visible size that the embedder confirms is a face. Rejected candidates (cats, mugs,
    /// textures) are removed from `faces`, and so are other candidates large enough to
    /// count towards `faceMultiple` that the embedder does not confirm.
    fn verify(&self, image: &RgbImage, faces: &mut Faces) -> TractResult<Option<PrimaryFace>> {
        let (width, height) = image.dimensions();
        faces.retain(|f| f.interocular() >= MIN_EYES_TO_SIZE * f.size());
        faces.sort_unstable_by(|a, b| {
            let visible = |f: &Face| f.visible_size(width, height);
            visible(b).total_cmp(&visible(a))
        });
        for _ in 0..MAX_VERIFIED.min(faces.len()) {
            let face = faces[0];
            let aligned = align::align(image, &face);
            let run = self.embedder.run(&aligned)?;
            if run.raw_norm() >= MIN_FACE_NORM {
                self.verify_others(image, faces)?;
                let embedding = self.embedder.embedding(&aligned, &run)?;
                return Ok(Some(PrimaryFace {
                    face,
                    occlusion: occlusion::measure(&aligned, &embedding, &run.bands),
                    embedding,
                    sharpness: sharpness::measure(&aligned),
                }));
            }
            faces.remove(0);
        }
        Ok(None)
    }

    /// Removes from `faces[1..]` the candidates of at least [`MIN_OTHER_VISIBLE`] of the
    /// enrolled face's visible size (`faces[0]`) that the embedder does not confirm; in a
    /// crowd, only the largest [`MAX_VERIFIED`] are checked.
    fn verify_others(&self, image: &RgbImage, faces: &mut Faces) -> TractResult<()> {
        let (width, height) = image.dimensions();
        let main = faces[0].visible_size(width, height);
        let (mut i, mut embedded) = (1, 0);
        while i < faces.len()
            && embedded < MAX_VERIFIED
            && faces[i].visible_size(width, height) >= MIN_OTHER_VISIBLE * main
        {
            embedded += 1;
            let run = self.embedder.run(&align::align(image, &faces[i]))?;
            if run.raw_norm() >= MIN_FACE_NORM {
                i += 1;
            } else {
                faces.remove(i);
            }
        }
        Ok(())
    }
}

/// Raw MobileFaceNet output length below which a detection is not a face: faces give
/// 45–90, the cats, mugs and textures that fool the detector 25–39.
pub const MIN_FACE_NORM: f32 = 40.0;

/// Eye distance relative to face size below which keypoints have collapsed: real faces
/// measure 0.3–0.5 frontal and about 0.2 in profile, false detections on textures < 0.15.
const MIN_EYES_TO_SIZE: f32 = 0.18;

/// At most this many candidates are embedded to find the enrolled face.
const MAX_VERIFIED: usize = 3;

/// Other faces of at least this fraction of the enrolled face's visible size are
/// confirmed by the embedder (the largest [`MAX_VERIFIED`] of them), so a texture does
/// not count towards `faceMultiple` (whose ratios, 0.6 and up, lie above it).
const MIN_OTHER_VISIBLE: f32 = 0.5;

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
    /// Variance of the Laplacian of the aligned grey face over the variance of its grey
    /// levels: fine detail relative to contrast, so light does not count.
    pub sharpness: f32,
}

/// The models directory: `$MODELS_DIR` if set, else `./models` if it holds the detector,
/// else the one in the source tree.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("models");
    if model::file(&local, DETECTOR).is_ok() {
        local
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models"))
    }
}

/// The models' precision: `$MODEL_PRECISION` (`f32` or `f16`) if set, else f32.
pub fn default_precision() -> Result<Precision, String> {
    std::env::var("MODEL_PRECISION")
        .ok()
        .filter(|p| !p.is_empty())
        .map_or(Ok(Precision::F32), |p| p.parse())
        .map_err(|e| format!("MODEL_PRECISION: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(name: &str) -> RgbImage {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        image::open(path).unwrap().into_rgb8()
    }

    /// The middle of a face's box, `shrink` of its size cut from each side: a face that
    /// fills the frame.
    fn tight_crop(image: &RgbImage, face: &Face, shrink: f32) -> RgbImage {
        let b = face.bbox;
        let (x0, y0) = (b.x0 + shrink * b.width(), b.y0 + shrink * b.height());
        let (w, h) = (
            (1.0 - 2.0 * shrink) * b.width(),
            (1.0 - 2.0 * shrink) * b.height(),
        );
        image::imageops::crop_imm(image, x0 as u32, y0 as u32, w as u32, h as u32).to_image()
    }

    /// Faces cropped to the middle of their box are missed by the usual pass and found
    /// by the wide one, then enrolled.
    #[test]
    fn faces_that_fill_the_frame_are_found_by_the_wide_pass() {
        let models = Models::load(&default_models_dir(), Precision::F32).unwrap();
        for name in ["clean/biden.jpg", "clean/astronaut.jpg"] {
            let image = photo(name);
            let face = models.analyse(&image).unwrap().primary.unwrap().face;
            let crop = tight_crop(&image, &face, 0.2);
            assert!(models.detector.detect(&crop).unwrap().is_empty(), "{name}");
            assert!(
                models.detector.detect_tiled(&crop).unwrap().is_empty(),
                "{name}"
            );
            assert_eq!(
                models.detector.detect_wide(&crop).unwrap().len(),
                1,
                "{name}"
            );
            assert!(models.analyse(&crop).unwrap().primary.is_some(), "{name}");
        }
    }

    /// With the mirror image averaged in, a face and its mirror image embed alike; each
    /// alone they do not.
    #[test]
    fn the_embedding_averages_the_face_and_its_mirror_image() {
        let mut models = Models::load(&default_models_dir(), Precision::F32).unwrap();
        let image = photo("clean/obama.jpg");
        let face = models.analyse(&image).unwrap().primary.unwrap().face;
        let aligned = align::align(&image, &face);
        let mirrored = image::imageops::flip_horizontal(&aligned);
        let cosine = |models: &Models| {
            let (a, b) = (
                &models.embedder.embed(&aligned).unwrap(),
                &models.embedder.embed(&mirrored).unwrap(),
            );
            a.cosine(b)
        };
        let averaged = cosine(&models);
        models.embedder.mirror = false;
        let single = cosine(&models);
        assert!(averaged > 0.99999, "averaged: {averaged}");
        assert!(single < 0.999, "single: {single}");
    }
}
