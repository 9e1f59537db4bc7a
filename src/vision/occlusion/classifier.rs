//! The `faceIsOccluded` classifier: logistic regression on the occlusion measures, the
//! region tones, the face embedding and the feature-map bands, its weights learned by
//! `scripts/occlusion-train` (in [`weights`]).

use super::{Occlusion, TONE_FEATURES};
use crate::vision::embed::{BAND_FEATURES, Bands, DIM, Embedding};

mod weights;

/// Where each group of features starts: four crop measures and the embedding's raw
/// length (over 64), the region tones, the unit embedding, the bands.
const TONES_AT: usize = 5;
const EMBEDDING_AT: usize = TONES_AT + TONE_FEATURES;
const BANDS_AT: usize = EMBEDDING_AT + DIM;

/// Length of the feature vector.
pub const FEATURES: usize = BANDS_AT + BAND_FEATURES;

/// The features the classifier reads, in its weights' order.
pub(super) fn features(
    o: &Occlusion,
    tones: &[f32; TONE_FEATURES],
    embedding: &Embedding,
    bands: &Bands,
) -> Box<[f32; FEATURES]> {
    let mut x = Box::new([0.0; FEATURES]);
    x[..TONES_AT].copy_from_slice(&[
        o.lower_skin,
        o.eye_brightness,
        o.eye_contrast,
        o.mouth_line,
        embedding.raw_norm / 64.0,
    ]);
    x[TONES_AT..EMBEDDING_AT].copy_from_slice(tones);
    x[EMBEDDING_AT..BANDS_AT].copy_from_slice(&embedding.vector);
    x[BANDS_AT..].copy_from_slice(bands);
    x
}

/// The logit that the face is covered, shifted by the operating point the training chose
/// (so 0 is the decision boundary).
pub fn score(x: &[f32; FEATURES]) -> f32 {
    weights::BIAS
        + weights::WEIGHTS
            .iter()
            .zip(x)
            .map(|(w, x)| w * x)
            .sum::<f32>()
}
