//! Passive liveness: the FaceAntiSpoofing deep-tree network scores a square face crop;
//! a recaptured photo or screen scores high, a live face low.

use std::path::Path;

use image::RgbImage;
use image::imageops::{self, FilterType};
use tract_nnef::prelude::*;

use super::detect::Face;
use super::model::{self, Plan, Precision};

/// The model's name in the models directory.
pub const MODEL: &str = "face_anti_spoofing";

/// Side of the square crop the network takes.
pub const SIDE: u32 = 256;

/// The crop's side relative to the face box's larger side.
pub const CROP_SCALE: f32 = 1.0;

/// Score above which a face is taken for a spoof: the model's published operating point.
pub const DEFAULT_THRESHOLD: f32 = 0.2;

/// The anti-spoofing plan.
pub struct Liveness {
    plan: Plan,
}

impl Liveness {
    /// Loads the model `MODEL` from `dir` (NNEF archive or ONNX file).
    pub fn load(dir: &Path, precision: Precision) -> TractResult<Liveness> {
        let side = SIDE as usize;
        Ok(Liveness {
            plan: model::load(&model::file(dir, MODEL)?, &[1, side, side, 3], precision)?,
        })
    }

    /// The spoof score of `face` in `image`: Σ |leaf score| · leaf mask over the
    /// network's eight leaves, one of which the mask selects. Lower is more live.
    pub fn score(&self, image: &RgbImage, face: &Face) -> TractResult<f32> {
        self.score_crop(&crop(image, face, CROP_SCALE))
    }

    /// The spoof score of a face crop already cut and resized by [`crop`].
    pub fn score_crop(&self, crop: &RgbImage) -> TractResult<f32> {
        let side = SIDE as usize;
        let input = tract_ndarray::Array4::from_shape_fn((1, side, side, 3), |(_, y, x, c)| {
            crop.get_pixel(x as u32, y as u32).0[c] as f32 / 255.0
        });
        let out = self.plan.run(Tensor::from(input))?;
        let (scores, mask) = (out[0].as_slice::<f32>()?, out[1].as_slice::<f32>()?);
        Ok(scores.iter().zip(mask).map(|(s, m)| s.abs() * m).sum())
    }
}

/// The square around the face box's centre with `scale` times its larger side, cut to
/// the image and resized to `SIDE`².
pub fn crop(image: &RgbImage, face: &Face, scale: f32) -> RgbImage {
    let b = &face.bbox;
    let (cx, cy) = ((b.x0 + b.x1) / 2.0, (b.y0 + b.y1) / 2.0);
    let half = face.size() * scale / 2.0;
    let clamp = |v: f32, max: u32| v.round().clamp(0.0, max as f32) as u32;
    let (x0, y0) = (
        clamp(cx - half, image.width()),
        clamp(cy - half, image.height()),
    );
    let (x1, y1) = (
        clamp(cx + half, image.width()),
        clamp(cy + half, image.height()),
    );
    let view = imageops::crop_imm(image, x0, y0, (x1 - x0).max(1), (y1 - y0).max(1));
    imageops::resize(&*view, SIDE, SIDE, FilterType::Triangle)
}
