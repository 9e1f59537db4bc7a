//! The per-enrolment secret rotation: a uniformly (Haar) random orthogonal matrix `Q`
//! drawn from a 32-byte seed. The protected template `t = Q·e` of a unit embedding is,
//! to whoever lacks the seed, a uniformly random unit vector; and since `Q` preserves
//! angles, `cos(Q·e, Q·e') = cos(e, e')`: matching loses nothing of what the model tells
//! apart.
//!
//! `Q` is never formed. It is the `Q` factor of the Householder QR factorisation of a
//! Gaussian matrix with its signs fixed so that `R` has a positive diagonal, which makes
//! it Haar distributed (Mezzadri, *How to generate random matrices from the classical
//! compact groups*, 2007): `Q = H₀ H₁ … H_{n−2} Λ`, where `H_k` reflects coordinates
//! `k…n−1` and `Λ` holds the signs. Column `k` of the Gaussian matrix, once reflected by
//! the earlier `H`, is again Gaussian and independent of them, so each `H_k` is drawn
//! from `n − k` fresh normals. Applying `Q` costs about `n²` multiply-adds.
//!
//! The draw is part of the state format: the ChaCha20 stream of the seed
//! ([`ChaCha20Rng`], fixed by its specification), 53-bit uniforms, Box–Muller normals in
//! pairs, reflection `k = 0, 1, …, n − 1` taking `n − k` of them in turn (the last, one
//! normal, gives only a sign).

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::vision::embed::DIM;

/// A protected template: an embedding rotated by an enrolment's secret `Q`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Template(pub [f32; DIM]);

/// Bytes of a template on the wire: `DIM` little-endian `f32`.
pub const TEMPLATE_BYTES: usize = DIM * 4;

impl Template {
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The template of `bytes`, if they are `DIM` finite values of unit norm (within
    /// rounding): what an enrolment or a device makes, and nothing else.
    pub fn from_bytes(bytes: &[u8]) -> Option<Template> {
        if bytes.len() != TEMPLATE_BYTES {
            return None;
        }
        let mut values = [0f32; DIM];
        for (v, b) in values.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        let norm: f64 = values.iter().map(|v| f64::from(*v).powi(2)).sum();
        ((norm - 1.0).abs() < 1e-3).then_some(Template(values))
    }

    /// The cosine of two templates: the embeddings' own, when one `Q` rotated both.
    pub fn cosine(&self, other: &Template) -> f32 {
        let dot: f64 = self
            .0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        dot as f32
    }
}

/// The rotation of one seed: its reflections' vectors, packed, and the signs.
pub struct Rotation {
    /// Reflection `k`'s vector `v` (length `n − k`, for `k < n − 1`), one after another.
    vectors: Vec<f64>,
    /// `2 / (v·v)` of each reflection (0 for a null vector, which never occurs in
    /// practice but must not divide by zero).
    scales: Vec<f64>,
    /// The diagonal of `Λ`.
    signs: [f64; DIM],
}

impl Rotation {
    /// The rotation drawn from `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Rotation {
        let mut normals = Normals::new(seed);
        let mut vectors = Vec::with_capacity(DIM * (DIM + 1) / 2);
        let mut scales = Vec::with_capacity(DIM - 1);
        let mut signs = [1f64; DIM];
        for (k, sign) in signs.iter_mut().enumerate() {
            let start = vectors.len();
            vectors.extend((k..DIM).map(|_| normals.next()));
            let x = &mut vectors[start..];
            if x.len() == 1 {
                // R's last diagonal entry is the normal itself.
                *sign = if x[0] < 0.0 { -1.0 } else { 1.0 };
                vectors.truncate(start);
                break;
            }
            // H x = α e₀ with α = −sign(x₀)·|x|: v = x − α e₀.
            let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let alpha = if x[0] < 0.0 { norm } else { -norm };
            x[0] -= alpha;
            *sign = if alpha < 0.0 { -1.0 } else { 1.0 };
            let vv: f64 = x.iter().map(|v| v * v).sum();
            scales.push(if vv > 0.0 { 2.0 / vv } else { 0.0 });
        }
        Rotation {
            vectors,
            scales,
            signs,
        }
    }

    /// `Q·vector`.
    pub fn apply(&self, vector: &[f32; DIM]) -> [f32; DIM] {
        let mut y: [f64; DIM] = std::array::from_fn(|i| f64::from(vector[i]) * self.signs[i]);
        // H_{n−2} first, H₀ last; reflection k starts at offset Σ_{j<k} (n − j).
        let mut end = self.vectors.len();
        for k in (0..self.scales.len()).rev() {
            let v = &self.vectors[end - (DIM - k)..end];
            end -= DIM - k;
            let tail = &mut y[k..];
            let dot: f64 = v.iter().zip(tail.iter()).map(|(a, b)| a * b).sum();
            let scale = dot * self.scales[k];
            tail.iter_mut().zip(v).for_each(|(t, v)| *t -= scale * v);
        }
        y.map(|v| v as f32)
    }

    /// The protected template of a unit embedding.
    pub fn protect(&self, embedding: &[f32; DIM]) -> Template {
        Template(self.apply(embedding))
    }
}

/// Standard normals from the ChaCha20 stream of a seed, by Box–Muller, two per pair of
/// uniforms.
struct Normals {
    rng: ChaCha20Rng,
    spare: Option<f64>,
}

impl Normals {
    fn new(seed: &[u8; 32]) -> Normals {
        Normals {
            rng: ChaCha20Rng::from_seed(*seed),
            spare: None,
        }
    }

    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f64 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let (u, v) = (self.uniform(), self.uniform());
        // 1 − u lies in (0, 1], so the logarithm is finite.
        let radius = (-2.0 * (1.0 - u).ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * v).sin_cos();
        self.spare = Some(radius * sin);
        radius * cos
    }
}

/// A reproducible random unit vector, for tests and measurements.
pub fn random_unit(seed: u64) -> [f32; DIM] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8] = 0xA5; // apart from any seed a rotation is drawn from in the tests
    let mut normals = Normals::new(&bytes);
    let v: [f64; DIM] = std::array::from_fn(|_| normals.next());
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.map(|x| (x / norm) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis(i: usize) -> [f32; DIM] {
        let mut e = [0f32; DIM];
        e[i] = 1.0;
        e
    }

    fn dot(a: &[f32; DIM], b: &[f32; DIM]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    /// The columns `Q·e_i` are orthonormal, and the rotation is a function of its seed.
    #[test]
    fn a_rotation_is_orthogonal_and_seeded() {
        let q = Rotation::from_seed(&[3; 32]);
        let columns: Vec<[f32; DIM]> = (0..DIM).map(|i| q.apply(&basis(i))).collect();
        for i in 0..DIM {
            for j in i..DIM {
                let want = if i == j { 1.0 } else { 0.0 };
                let got = dot(&columns[i], &columns[j]);
                assert!((got - want).abs() < 1e-5, "Q column {i}·{j} = {got}");
            }
        }
        let e = random_unit(1);
        assert_eq!(q.apply(&e), Rotation::from_seed(&[3; 32]).apply(&e));
        assert_ne!(q.apply(&e), Rotation::from_seed(&[4; 32]).apply(&e));
    }

    /// Angles are kept: the cosine of two rotated embeddings is theirs.
    #[test]
    fn rotation_keeps_cosines() {
        let q = Rotation::from_seed(&[9; 32]);
        for s in 0..20 {
            let (a, b) = (random_unit(2 * s), random_unit(2 * s + 1));
            let mixed: [f32; DIM] = std::array::from_fn(|i| a[i] * 0.8 + b[i] * 0.6);
            let want = dot(&a, &mixed) as f32;
            let got = q.protect(&a).cosine(&q.protect(&mixed));
            assert!((got - want).abs() < 1e-5, "{got} against {want}");
        }
    }

    /// Haar: one fixed vector rotated by many seeds lands anywhere on the sphere. Each
    /// coordinate of `Q·e` then has mean 0 and variance 1/n, as a random unit vector's,
    /// and the first coordinate is not special (a product of reflections without the
    /// sign correction would favour it).
    #[test]
    fn a_fixed_vector_is_spread_over_the_sphere() {
        let e = basis(0);
        let trials = 2000;
        let (mut sum, mut squares) = ([0f64; DIM], [0f64; DIM]);
        for t in 0..trials {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&(t as u32).to_le_bytes());
            let r = Rotation::from_seed(&seed).apply(&e);
            for i in 0..DIM {
                sum[i] += f64::from(r[i]);
                squares[i] += f64::from(r[i]).powi(2);
            }
        }
        let n = trials as f64;
        // Mean of n draws of variance 1/DIM: standard error 1/sqrt(n·DIM) ≈ 0.0016.
        let worst_mean = sum.iter().map(|s| (s / n).abs()).fold(0.0, f64::max);
        assert!(worst_mean < 0.01, "a coordinate's mean is {worst_mean}");
        for (i, s) in squares.iter().enumerate() {
            let variance = s / n * DIM as f64;
            assert!(
                (0.8..1.2).contains(&variance),
                "coordinate {i}: {variance}·1/n"
            );
        }
    }

    #[test]
    fn templates_round_trip_and_only_unit_vectors_are_taken() {
        let t = Rotation::from_seed(&[1; 32]).protect(&random_unit(5));
        assert_eq!(Template::from_bytes(&t.to_bytes()), Some(t));
        assert_eq!(Template::from_bytes(&t.to_bytes()[4..]), None);
        let doubled = Template(t.0.map(|v| v * 2.0));
        assert_eq!(Template::from_bytes(&doubled.to_bytes()), None);
        let nan = Template([f32::NAN; DIM]);
        assert_eq!(Template::from_bytes(&nan.to_bytes()), None);
    }
}
