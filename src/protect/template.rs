//! Binary templates: the signs of an embedding under a random projection drawn from a
//! per-enrolment seed (so two enrolments of one face share nothing), and the choice of
//! the most reliable of them.
//!
//! The projection is part of the state format: row `r` of the `PROJECTED` × 192 matrix is
//! read from the ChaCha20 stream of the seed ([`rand_chacha::ChaCha20Rng`], whose output
//! is fixed by its specification), 53-bit uniforms turned into standard normals by the
//! Box–Muller transform, two per pair of uniforms.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::vision::embed::{DIM, Embedding};

/// Projections per template.
pub const PROJECTED: usize = 2047;
/// Bits kept: the projections of largest magnitude at enrolment.
pub const KEPT: usize = 511;

/// The `PROJECTED` rows of the projection drawn from `seed`.
pub fn rows(seed: &[u8; 32]) -> impl Iterator<Item = [f64; DIM]> {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    let mut uniform = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (0..PROJECTED).map(move |_| {
        let mut row = [0.0f64; DIM];
        for pair in row.chunks_exact_mut(2) {
            let (u, v) = (uniform(), uniform());
            // 1 − u lies in (0, 1], so the logarithm is finite.
            let radius = (-2.0 * (1.0 - u).ln()).sqrt();
            let (sin, cos) = (std::f64::consts::TAU * v).sin_cos();
            pair[0] = radius * cos;
            pair[1] = radius * sin;
        }
        row
    })
}

/// The embedding's `PROJECTED` projections on the rows drawn from `seed`.
pub fn project(seed: &[u8; 32], embedding: &Embedding) -> Vec<f32> {
    rows(seed).map(|row| projection(&row, embedding)).collect()
}

/// The embedding's projection on one row.
pub fn projection(row: &[f64; DIM], embedding: &Embedding) -> f32 {
    let dot: f64 = row
        .iter()
        .zip(&embedding.vector)
        .map(|(r, e)| r * *e as f64)
        .sum();
    dot as f32
}

/// The indices of the `KEPT` projections of largest magnitude, ascending.
pub fn most_reliable(projected: &[f32]) -> Vec<u16> {
    let mut order: Vec<u16> = (0..projected.len() as u16).collect();
    order.sort_by(|&i, &j| {
        projected[j as usize]
            .abs()
            .total_cmp(&projected[i as usize].abs())
    });
    order.truncate(KEPT);
    order.sort_unstable();
    order
}

/// The sign bits (1 for positive) of `projected` at `selection`.
pub fn bits(projected: &[f32], selection: &[u16]) -> Vec<u8> {
    selection
        .iter()
        .map(|&i| u8::from(projected[i as usize] > 0.0))
        .collect()
}

/// A reproducible random unit vector, for tests.
#[cfg(test)]
pub fn random_unit(seed: u64) -> [f32; DIM] {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut vector = [0.0f32; DIM];
    vector
        .iter_mut()
        .for_each(|v| *v = (rng.next_u32() as f32 / u32::MAX as f32) - 0.5);
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    vector.map(|v| v / norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The projection is a function of the seed alone, its rows are standard normal (so
    /// a unit vector's projections have variance 1), and the selection keeps the largest.
    #[test]
    fn projections_are_seeded_standard_normal() {
        let e = Embedding {
            vector: random_unit(1),
            raw_norm: 1.0,
        };
        let a = project(&[7; 32], &e);
        assert_eq!(a, project(&[7; 32], &e));
        assert_ne!(a, project(&[8; 32], &e));
        let variance = a.iter().map(|p| p * p).sum::<f32>() / a.len() as f32;
        assert!((variance - 1.0).abs() < 0.1, "variance {variance}");
        let kept = most_reliable(&a);
        assert_eq!(kept.len(), KEPT);
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
        let smallest_kept = kept
            .iter()
            .map(|&i| a[i as usize].abs())
            .fold(f32::MAX, f32::min);
        let dropped = (0..PROJECTED as u16).filter(|i| !kept.contains(i));
        assert!(
            dropped
                .map(|i| a[i as usize].abs())
                .all(|m| m <= smallest_kept)
        );
        let ones = bits(&a, &kept).iter().filter(|b| **b == 1).count();
        assert!((150..360).contains(&ones), "{ones} of {KEPT} bits set");
    }
}
