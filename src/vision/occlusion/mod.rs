//! Is the face covered (mask, dark glasses, hand, scarf)? A logistic classifier learned on
//! real occluded and unoccluded photos ([`classifier`]) reads what the pipeline already
//! has: what the embedder's last feature map sees over the eyes and over the mouth, the
//! embedding itself, and measures of the aligned crop's tones taken here.
//!
//! The aligned crop puts every feature at a known place, so each measure compares one
//! feature region with the face's own reference skin (the glabella, between the brows,
//! which masks, hands over the mouth and glasses leave visible).

pub mod classifier;

use image::RgbImage;

use super::embed::{Bands, Embedding};

/// Region in aligned-crop pixels: x0..x1, y0..y1.
type Region = (u32, u32, u32, u32);

const GLABELLA: Region = (48, 36, 64, 48);
const FOREHEAD: Region = (42, 18, 70, 32);
const RIGHT_EYE: Region = (28, 45, 49, 59);
const LEFT_EYE: Region = (63, 45, 84, 59);
const NOSE: Region = (46, 62, 66, 80);
const MOUTH: Region = (40, 82, 72, 102);
const LOWER_CHEEKS: [Region; 2] = [(26, 76, 40, 96), (72, 76, 86, 96)];

/// The measures behind `faceIsOccluded`, each in [0, 1] or a ratio, and the classifier's
/// verdict on them and the embedding.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Occlusion {
    /// The classifier's logit, shifted so that 0 is its operating point: positive means
    /// covered.
    pub score: f32,
    /// Fraction of the nose, mouth and lower-cheek pixels that look like the face's skin.
    pub lower_skin: f32,
    /// Mean luminance of the darker eye region relative to the reference skin.
    pub eye_brightness: f32,
    /// Luminance contrast inside the eye regions (sclera vs iris), relative to the skin.
    pub eye_contrast: f32,
    /// Depth of the darkest row in the mouth region (the lip line) relative to the skin.
    pub mouth_line: f32,
}

struct Stats {
    luma: f32,
    chroma: (f32, f32),
}

fn luma(p: [u8; 3]) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

/// Normalised (r, g) chromaticity: independent of brightness.
fn chroma(p: [u8; 3]) -> (f32, f32) {
    let sum = (p[0] as f32 + p[1] as f32 + p[2] as f32).max(1.0);
    (p[0] as f32 / sum, p[1] as f32 / sum)
}

fn pixels(img: &RgbImage, (x0, y0, x1, y1): Region) -> impl Iterator<Item = [u8; 3]> + '_ {
    (y0..y1).flat_map(move |y| (x0..x1).map(move |x| img.get_pixel(x, y).0))
}

fn stats(img: &RgbImage, region: Region) -> Stats {
    let (mut n, mut l, mut r, mut g) = (0.0, 0.0, 0.0, 0.0);
    for p in pixels(img, region) {
        let (cr, cg) = chroma(p);
        n += 1.0;
        l += luma(p);
        r += cr;
        g += cg;
    }
    Stats {
        luma: l / n,
        chroma: (r / n, g / n),
    }
}

/// Regions whose tone, against the reference skin, the classifier reads: each eye, the
/// nose, the mouth and each lower cheek.
const TONED: [Region; 6] = [
    RIGHT_EYE,
    LEFT_EYE,
    NOSE,
    MOUTH,
    LOWER_CHEEKS[0],
    LOWER_CHEEKS[1],
];

/// Tone features: per toned region, luminance relative to the skin, the two chromaticity
/// differences from it and the fraction of pixels far darker than it.
pub const TONE_FEATURES: usize = TONED.len() * 4;

/// Measures occlusion on a 112×112 aligned face, whose embedding and feature-map bands
/// the embedder gave.
pub fn measure(aligned: &RgbImage, embedding: &Embedding, bands: &Bands) -> Occlusion {
    let (mut occlusion, x) = measured(aligned, embedding, bands);
    occlusion.score = classifier::score(&x);
    occlusion
}

/// The classifier's features of an aligned face, for its training.
pub fn features(
    aligned: &RgbImage,
    embedding: &Embedding,
    bands: &Bands,
) -> Box<[f32; classifier::FEATURES]> {
    measured(aligned, embedding, bands).1
}

/// The crop's measures (the score left at 0) and the classifier's features.
fn measured(
    aligned: &RgbImage,
    embedding: &Embedding,
    bands: &Bands,
) -> (Occlusion, Box<[f32; classifier::FEATURES]>) {
    let skin = reference_skin(aligned);
    let occlusion = measures(aligned, &skin);
    let x = classifier::features(&occlusion, &tones(aligned, &skin), embedding, bands);
    (occlusion, x)
}

/// The reference skin: the brighter of glabella and forehead (a fringe or an eye bar
/// darkens one of them, rarely both).
fn reference_skin(aligned: &RgbImage) -> Stats {
    let (glabella, forehead) = (stats(aligned, GLABELLA), stats(aligned, FOREHEAD));
    if glabella.luma >= forehead.luma {
        glabella
    } else {
        forehead
    }
}

/// The tone of each region in [`TONED`] against the face's own skin: a mask, dark glasses
/// or a hand change it where a bare face does not.
fn tones(aligned: &RgbImage, skin: &Stats) -> [f32; TONE_FEATURES] {
    let skin_luma = skin.luma.max(1.0);
    let mut tones = [0.0; TONE_FEATURES];
    for (out, region) in tones.chunks_exact_mut(4).zip(TONED) {
        let s = stats(aligned, region);
        let (mut n, mut dark) = (0.0f32, 0.0f32);
        for p in pixels(aligned, region) {
            n += 1.0;
            dark += f32::from(u8::from(luma(p) < 0.35 * skin_luma));
        }
        out.copy_from_slice(&[
            s.luma / skin_luma,
            s.chroma.0 - skin.chroma.0,
            s.chroma.1 - skin.chroma.1,
            dark / n,
        ]);
    }
    tones
}

/// The four measures of the crop (the score left at 0).
fn measures(aligned: &RgbImage, skin: &Stats) -> Occlusion {
    let skin_luma = skin.luma.max(1.0);
    let is_skin = |p: [u8; 3]| {
        let (r, g) = chroma(p);
        let d = (r - skin.chroma.0).hypot(g - skin.chroma.1);
        let l = luma(p) / skin_luma;
        d < 0.035 && (0.45..1.6).contains(&l)
    };
    let (mut total, mut skin_like) = (0u32, 0u32);
    for region in [NOSE, MOUTH, LOWER_CHEEKS[0], LOWER_CHEEKS[1]] {
        for p in pixels(aligned, region) {
            total += 1;
            skin_like += u32::from(is_skin(p));
        }
    }
    let eye = |region: Region| {
        let lumas: Vec<f32> = pixels(aligned, region).map(luma).collect();
        let mean = lumas.iter().sum::<f32>() / lumas.len() as f32;
        let sd =
            (lumas.iter().map(|l| (l - mean).powi(2)).sum::<f32>() / lumas.len() as f32).sqrt();
        (mean / skin_luma, sd / skin_luma)
    };
    let ((b0, c0), (b1, c1)) = (eye(RIGHT_EYE), eye(LEFT_EYE));
    let (x0, y0, x1, y1) = MOUTH;
    let rows: Vec<f32> = (y0..y1)
        .map(|y| {
            (x0 + 6..x1 - 6)
                .map(|x| luma(aligned.get_pixel(x, y).0))
                .sum::<f32>()
                / (x1 - x0 - 12) as f32
        })
        .collect();
    let darkest = rows.iter().copied().fold(f32::MAX, f32::min);
    let brightest = rows.iter().copied().fold(0.0, f32::max);
    Occlusion {
        score: 0.0,
        lower_skin: skin_like as f32 / total as f32,
        eye_brightness: b0.min(b1),
        eye_contrast: c0.min(c1),
        mouth_line: (brightest - darkest) / skin_luma,
    }
}
