//! MobileFaceNet: aligned 112×112 face → L2-normalised 192-d embedding.

use std::path::Path;

use image::RgbImage;
use tract_nnef::prelude::*;
use tract_nnef::tract_core::internal::{bail, ensure};

use super::align::ALIGNED;
use super::model::{self, Floats, Plan, Precision};

/// Embedding dimension.
pub const DIM: usize = 192;

/// The network's last feature map (7×7 cells of 512 channels, before the global pooling
/// that makes the embedding): where on the face each feature is, which the occlusion
/// classifier reads ([`Bands`]).
pub const FEATURE_MAP: &str = "MobileFaceNet/MobileFaceNet/Conv2d_7/add";

/// Channels of [`FEATURE_MAP`].
const CHANNELS: usize = 512;

/// Cells per side of [`FEATURE_MAP`].
const CELLS: usize = 7;

/// Rows of [`FEATURE_MAP`] averaged into each band: the eyes and brows (aligned-crop rows
/// 16–64), then the nose and mouth (64–112).
const BANDS: [std::ops::Range<usize>; 2] = [1..4, 4..7];

/// The mean of each channel of the last feature map over each band of the face, eyes
/// then mouth: what the network sees there, for the occlusion classifier. Kept only
/// while one image is analysed.
pub type Bands = [f32; BAND_FEATURES];

/// Length of [`Bands`].
pub const BAND_FEATURES: usize = BANDS.len() * CHANNELS;

/// Length of a raw network output.
fn norm(raw: &[f32; DIM]) -> f32 {
    raw.iter().map(|v| v * v).sum::<f32>().sqrt()
}

/// A unit-length face embedding. Biometric data: never logged, never stored as is.
#[derive(Clone)]
pub struct Embedding {
    pub vector: [f32; DIM],
    /// Length of the raw network output; lower for non-faces and covered faces.
    pub raw_norm: f32,
}

impl Embedding {
    /// The unit vector of a raw network output, and the output's length.
    fn normalised(raw: [f32; DIM]) -> Embedding {
        let raw_norm = norm(&raw);
        let mut vector = [0.0; DIM];
        for (v, r) in vector.iter_mut().zip(raw) {
            *v = r / raw_norm.max(f32::MIN_POSITIVE);
        }
        Embedding { vector, raw_norm }
    }

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

/// One run of the network on a crop, without its mirror image.
pub struct Run {
    raw: [f32; DIM],
    /// The feature map's bands, for the occlusion classifier.
    pub bands: Box<Bands>,
}

impl Run {
    /// Length of the raw output: faces 45–90, cats, mugs and textures 25–39.
    pub fn raw_norm(&self) -> f32 {
        norm(&self.raw)
    }
}

/// The MobileFaceNet plan.
pub struct Embedder {
    plan: Plan,
    /// Whether [`Embedder::embed`] also embeds the mirrored crop and averages the two
    /// (test-time augmentation: on by default; `scripts/accuracy --single` measures it).
    pub mirror: bool,
}

impl Embedder {
    pub fn load(path: &Path, precision: Precision) -> TractResult<Embedder> {
        let side = ALIGNED as usize;
        Ok(Embedder {
            plan: model::load(path, &[1, side, side, 3], &[FEATURE_MAP], precision)?,
            mirror: true,
        })
    }

    /// Embeds an aligned face crop and, if [`Embedder::mirror`], its mirror image.
    pub fn embed(&self, aligned: &RgbImage) -> TractResult<Embedding> {
        let run = self.run(aligned)?;
        self.embedding(aligned, &run)
    }

    /// Runs the network once on the crop: enough to tell a face from a non-face
    /// ([`Run::raw_norm`]) and to read its feature map.
    pub fn run(&self, aligned: &RgbImage) -> TractResult<Run> {
        let (raw, map) = self.raw(aligned, false)?;
        Ok(Run {
            raw,
            bands: bands(&map)?,
        })
    }

    /// The embedding of the crop `run` was made of: its raw output and, if
    /// [`Embedder::mirror`], the mirror image's, averaged before normalisation.
    pub fn embedding(&self, aligned: &RgbImage, run: &Run) -> TractResult<Embedding> {
        let mut raw = run.raw;
        if self.mirror {
            for (r, m) in raw.iter_mut().zip(self.raw(aligned, true)?.0) {
                *r = (*r + m) / 2.0;
            }
        }
        Ok(Embedding::normalised(raw))
    }

    /// The network's raw output for the crop, mirrored left to right if `mirrored`, and
    /// its feature map.
    fn raw(&self, aligned: &RgbImage, mirrored: bool) -> TractResult<([f32; DIM], Tensor)> {
        let side = ALIGNED as usize;
        let input = tract_ndarray::Array4::from_shape_fn((1, side, side, 3), |(_, y, x, c)| {
            let x = if mirrored { side - 1 - x } else { x };
            (aligned.get_pixel(x as u32, y as u32).0[c] as f32 - 127.5) / 128.0
        });
        let mut out = self.plan.run(Tensor::from(input))?.into_iter();
        let (Some(embedding), Some(map)) = (out.next(), out.next()) else {
            bail!("the embedder gives fewer than 2 outputs");
        };
        let embedding = embedding.floats()?;
        ensure!(
            embedding.len() == DIM,
            "the embedder gives {} values, not {DIM}",
            embedding.len()
        );
        let mut raw = [0.0; DIM];
        raw.copy_from_slice(embedding);
        Ok((raw, map))
    }
}

/// The [`Bands`] of a feature map laid out channels first (ONNX) or last (NNEF).
fn bands(map: &Tensor) -> TractResult<Box<Bands>> {
    let values = map.floats()?;
    let at: fn(usize, usize, usize) -> usize = match map.shape() {
        [1, CHANNELS, CELLS, CELLS] => |c, y, x| (c * CELLS + y) * CELLS + x,
        [1, CELLS, CELLS, CHANNELS] => |c, y, x| (y * CELLS + x) * CHANNELS + c,
        shape => bail!("the embedder's feature map is {shape:?}"),
    };
    let mut bands = Box::new([0.0; BAND_FEATURES]);
    for (b, rows) in BANDS.iter().enumerate() {
        let cells = (rows.len() * CELLS) as f32;
        for c in 0..CHANNELS {
            let sum: f32 = rows
                .clone()
                .flat_map(|y| (0..CELLS).map(move |x| values[at(c, y, x)]))
                .sum();
            bands[b * CHANNELS + c] = sum / cells;
        }
    }
    Ok(bands)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A feature map whose value at (channel, row, column) is known, in either layout.
    fn map(channels_first: bool) -> Tensor {
        let value = |c: usize, y: usize, x: usize| (c * 100 + y * 10 + x) as f32;
        if channels_first {
            tract_ndarray::Array4::from_shape_fn((1, CHANNELS, CELLS, CELLS), |(_, c, y, x)| {
                value(c, y, x)
            })
            .into()
        } else {
            tract_ndarray::Array4::from_shape_fn((1, CELLS, CELLS, CHANNELS), |(_, y, x, c)| {
                value(c, y, x)
            })
            .into()
        }
    }

    #[test]
    fn bands_average_the_eye_and_mouth_rows_in_either_layout() {
        let (first, last) = (bands(&map(true)).unwrap(), bands(&map(false)).unwrap());
        assert_eq!(first, last);
        // Channel c: rows 1–3 average 20 + 3 (the mean column), rows 4–6 average 50 + 3.
        for c in [0, 7, CHANNELS - 1] {
            assert_eq!(first[c], (c * 100) as f32 + 23.0);
            assert_eq!(first[CHANNELS + c], (c * 100) as f32 + 53.0);
        }
        let wrong: Tensor = tract_ndarray::Array4::<f32>::zeros((1, 7, 512, 7)).into();
        assert!(bands(&wrong).is_err());
    }
}
