//! Passive liveness: the FaceAntiSpoofing deep-tree network scores a square face crop;
//! a recaptured photo or screen scores high, a live face low.

use std::path::Path;

use image::RgbImage;
use image::imageops::{self, FilterType};
use tract_nnef::prelude::*;

use super::detect::Face;
use super::model::{self, Floats, Plan, Precision};

/// The model's name in the models directory.
pub const MODEL: &str = "face_anti_spoofing";

/// Side of the square crop the network takes.
pub const SIDE: u32 = 256;

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
            plan: model::load(
                &model::file(dir, MODEL)?,
                &[1, side, side, 3],
                &[],
                precision,
            )?,
        })
    }

    /// The spoof score of `face` in `image`: Σ |leaf score| · leaf mask over the
    /// network's eight leaves, one of which the mask selects. Lower is more live.
    pub fn score(&self, image: &RgbImage, face: &Face) -> TractResult<f32> {
        let crop = crop(image, face);
        let side = SIDE as usize;
        let input = tract_ndarray::Array4::from_shape_fn((1, side, side, 3), |(_, y, x, c)| {
            crop.get_pixel(x as u32, y as u32).0[c] as f32 / 255.0
        });
        let out = self.plan.run(Tensor::from(input))?;
        let (scores, mask) = (out[0].floats()?, out[1].floats()?);
        Ok(scores.iter().zip(mask).map(|(s, m)| s.abs() * m).sum())
    }
}

/// The square around the face box's centre with its larger side (as the model's own
/// app crops), cut to the image and resized to `SIDE`². Never empty, even for a box
/// outside the image.
fn crop(image: &RgbImage, face: &Face) -> RgbImage {
    let b = &face.bbox;
    let (cx, cy) = ((b.x0 + b.x1) / 2.0, (b.y0 + b.y1) / 2.0);
    let half = face.size() / 2.0;
    // At least one pixel inside the image, whatever the box.
    let span = |centre: f32, size: u32| {
        let lo = ((centre - half).round().max(0.0) as u32).min(size.saturating_sub(1));
        let hi = ((centre + half).round().max(0.0) as u32).clamp(lo + 1, size.max(1));
        (lo, hi - lo)
    };
    let ((x, w), (y, h)) = (span(cx, image.width()), span(cy, image.height()));
    let view = imageops::crop_imm(image, x, y, w, h);
    imageops::resize(&*view, SIDE, SIDE, FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::geometry::{Point, Rect};

    fn face(x0: f32, y0: f32, x1: f32, y1: f32) -> Face {
        Face {
            score: 1.0,
            bbox: Rect { x0, y0, x1, y1 },
            keypoints: [Point::new(0.0, 0.0); 6],
        }
    }

    #[test]
    fn crops_are_square_inside_and_never_empty() {
        let image = RgbImage::from_fn(100, 80, |x, y| image::Rgb([x as u8, y as u8, 0]));
        // Inside: the box's square, its top-left pixel first.
        let inside = crop(&image, &face(20.0, 10.0, 60.0, 50.0));
        assert_eq!(inside.dimensions(), (SIDE, SIDE));
        assert_eq!(inside.get_pixel(0, 0).0[..2], [20, 10]);
        // Past every edge, or entirely outside: still a crop of the image.
        for b in [
            face(-50.0, -50.0, 150.0, 130.0),
            face(500.0, 500.0, 540.0, 540.0),
            face(-90.0, -90.0, -50.0, -50.0),
        ] {
            assert_eq!(crop(&image, &b).dimensions(), (SIDE, SIDE));
        }
    }
}
