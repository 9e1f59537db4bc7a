//! MobileFaceNet: aligned 112×112 face → L2-normalised 192-d embedding.

use std::path::Path;

use image::RgbImage;
use tract_nnef::prelude::*;

use super::align::ALIGNED;
use super::model::{self, Plan, Precision};

/// Embedding dimension.
pub const DIM: usize = 192;

/// A unit-length face embedding. Biometric data: never logged, never stored as is.
#[derive(Clone)]
pub struct Embedding {
    pub vector: [f32; DIM],
    /// Length of the raw network output; lower for non-faces and covered faces.
    pub raw_norm: f32,
}

impl Embedding {
    /// Cosine similarity (both vectors are unit length).
    pub fn cosine(&self, other: &Embedding) -> f32 {
        self.vector
            .iter()
            .zip(&other.vector)
            .map(|(a, b)| a * b)
            .sum()
    }
}

impl std::fmt::Debug for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Embedding(<redacted>)")
    }
}

/// The MobileFaceNet plan.
pub struct Embedder {
    plan: Plan,
}

impl Embedder {
    pub fn load(path: &Path, precision: Precision) -> TractResult<Embedder> {
        let side = ALIGNED as usize;
        Ok(Embedder {
            plan: model::load(path, &[1, side, side, 3], precision)?,
        })
    }

    /// Embeds an aligned face crop.
    pub fn embed(&self, aligned: &RgbImage) -> TractResult<Embedding> {
        let side = ALIGNED as usize;
        let input = tract_ndarray::Array4::from_shape_fn((1, side, side, 3), |(_, y, x, c)| {
            (aligned.get_pixel(x as u32, y as u32).0[c] as f32 - 127.5) / 128.0
        });
        let out = self.plan.run(Tensor::from(input))?;
        let raw = out[0].as_slice::<f32>()?;
        let raw_norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
        let mut vector = [0.0; DIM];
        for (v, r) in vector.iter_mut().zip(raw) {
            *v = r / raw_norm.max(f32::MIN_POSITIVE);
        }
        Ok(Embedding { vector, raw_norm })
    }
}
