//! The fuzzy commitment: a random secret, encoded with a BCH code, hidden by the
//! template's reliable bits (helper data = codeword ⊕ bits). A fresh embedding close
//! enough to the enrolled one gives bits within the code's radius, so decoding
//! `helper ⊕ bits'` gives the codeword back, and with it the secret.

use std::sync::OnceLock;

use zeroize::Zeroizing;

use super::bch::Bch;
use super::template::{self, KEPT, PROJECTED};
use crate::vision::embed::Embedding;

/// The code: BCH of length 2⁹ − 1 = [`KEPT`] correcting [`ERRORS`] errors, 157 message
/// bits (the secret).
const M: u32 = 9;
/// Errors corrected, about 10 % of the bits: between the most a genuine pair showed and
/// the fewest an impostor pair did (see the README's *Template protection*).
pub const ERRORS: usize = 50;

/// The code, built once.
pub fn code() -> &'static Bch {
    static CODE: OnceLock<Bch> = OnceLock::new();
    // M and ERRORS are a valid pair: tested below.
    CODE.get_or_init(|| Bch::new(M, ERRORS).expect("BCH(511, t = 50) exists"))
}

/// The secret, one bit per byte, wiped when dropped.
pub type Secret = Zeroizing<Vec<u8>>;

/// What recovery needs besides a face: the projection seed, the bits kept, the helper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sketch {
    pub seed: [u8; 32],
    /// Indices of the kept projections, ascending.
    pub selection: Vec<u16>,
    /// Codeword ⊕ template bits, one bit per byte.
    pub helper: Vec<u8>,
}

/// Why stored sketch data was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl Sketch {
    /// A sketch of `embedding` with a fresh seed and secret.
    pub fn enrol(embedding: &Embedding) -> Result<(Sketch, Secret), getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        let mut secret = Zeroizing::new(vec![0u8; code().k()]);
        getrandom::fill(&mut secret)?;
        secret.iter_mut().for_each(|b| *b &= 1);
        let projected = template::project(&seed, embedding);
        let selection = template::most_reliable(&projected);
        let bits = Zeroizing::new(template::bits(&projected, &selection));
        let codeword = Zeroizing::new(code().encode(&secret));
        let helper = xor(&codeword, &bits);
        Ok((
            Sketch {
                seed,
                selection,
                helper,
            },
            secret,
        ))
    }

    /// The secret, if `embedding` is close enough to the enrolled one; `None` otherwise.
    pub fn recover(&self, embedding: &Embedding) -> Option<Secret> {
        let projected = template::project(&self.seed, embedding);
        self.recover_bits(&Zeroizing::new(template::bits(&projected, &self.selection)))
    }

    /// The secret, if the template `bits` (at the selection) are close enough to the
    /// enrolled ones; `None` otherwise.
    pub fn recover_bits(&self, bits: &[u8]) -> Option<Secret> {
        let word = Zeroizing::new(xor(&self.helper, bits));
        let codeword = Zeroizing::new(code().decode(&word)?);
        Some(Zeroizing::new(code().message(&codeword).to_vec()))
    }

    /// The selection as a mask of [`PROJECTED`] bits, packed (least significant first).
    pub fn mask_bytes(&self) -> Vec<u8> {
        let mut mask = vec![0u8; PROJECTED];
        self.selection.iter().for_each(|&i| mask[i as usize] = 1);
        pack(&mask)
    }

    /// The helper bits, packed (least significant first).
    pub fn helper_bytes(&self) -> Vec<u8> {
        pack(&self.helper)
    }

    /// A sketch from its stored parts, checked: a seed of 32 bytes, a mask of
    /// [`PROJECTED`] bits with [`KEPT`] set, a helper of [`KEPT`] bits.
    pub fn from_parts(seed: &[u8], mask: &[u8], helper: &[u8]) -> Result<Sketch, Malformed> {
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| Malformed("the projection seed is not 32 bytes"))?;
        let mask =
            unpack(mask, PROJECTED).ok_or(Malformed("the bit selection has the wrong length"))?;
        let selection: Vec<u16> = (0..PROJECTED as u16)
            .filter(|&i| mask[i as usize] == 1)
            .collect();
        if selection.len() != KEPT {
            return Err(Malformed("the bit selection does not keep 511 bits"));
        }
        let helper =
            unpack(helper, KEPT).ok_or(Malformed("the helper data has the wrong length"))?;
        Ok(Sketch {
            seed,
            selection,
            helper,
        })
    }
}

/// Bits packed into bytes, least significant first.
fn pack(bits: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; bits.len().div_ceil(8)];
    for (i, b) in bits.iter().enumerate() {
        bytes[i / 8] |= (b & 1) << (i % 8);
    }
    bytes
}

/// The `n` bits [`pack`] made `bytes` of; `None` if `bytes` is not their length or sets
/// bits beyond them.
fn unpack(bytes: &[u8], n: usize) -> Option<Vec<u8>> {
    let bits: Vec<u8> = (0..bytes.len() * 8)
        .map(|i| bytes[i / 8] >> (i % 8) & 1)
        .collect();
    let fits = bytes.len() == n.div_ceil(8) && bits[n..].iter().all(|b| *b == 0);
    fits.then(|| bits[..n].to_vec())
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::embed::DIM;

    /// A unit vector at cosine `cos` from `base`, turned towards `other`.
    fn towards(base: &[f32; DIM], other: &[f32; DIM], cos: f32) -> Embedding {
        let dot: f32 = base.iter().zip(other).map(|(a, b)| a * b).sum();
        let mut ortho: Vec<f32> = other.iter().zip(base).map(|(o, b)| o - dot * b).collect();
        let norm = ortho.iter().map(|v| v * v).sum::<f32>().sqrt();
        ortho.iter_mut().for_each(|v| *v /= norm);
        let sin = (1.0 - cos * cos).sqrt();
        Embedding {
            vector: std::array::from_fn(|i| cos * base[i] + sin * ortho[i]),
            raw_norm: 1.0,
        }
    }

    use super::template::random_unit as unit;

    #[test]
    fn the_code_keeps_a_157_bit_secret() {
        assert_eq!((code().n(), code().k(), code().t()), (KEPT, 157, ERRORS));
    }

    /// The same face gives the secret back, a distant one does not; stored parts
    /// round-trip and damaged ones are refused.
    #[test]
    fn close_faces_recover_the_secret_and_far_ones_do_not() {
        let (a, b) = (unit(1), unit(2));
        let enrolled = towards(&a, &b, 1.0);
        let (sketch, secret) = Sketch::enrol(&enrolled).unwrap();
        assert_eq!(sketch.recover(&enrolled).as_deref(), Some(&*secret));
        assert_eq!(
            sketch.recover(&towards(&a, &b, 0.95)).as_deref(),
            Some(&*secret)
        );
        assert_eq!(sketch.recover(&towards(&a, &b, 0.3)), None);
        let parts = (sketch.seed, sketch.mask_bytes(), sketch.helper_bytes());
        assert_eq!(
            Sketch::from_parts(&parts.0, &parts.1, &parts.2),
            Ok(sketch.clone())
        );
        assert!(Sketch::from_parts(&parts.0[1..], &parts.1, &parts.2).is_err());
        assert!(Sketch::from_parts(&parts.0, &parts.1[1..], &parts.2).is_err());
        assert!(Sketch::from_parts(&parts.0, &parts.1, &parts.2[1..]).is_err());
        let mut extra = parts.1.clone();
        extra[0] ^= if sketch.selection[0] == 0 { 2 } else { 1 };
        assert!(Sketch::from_parts(&parts.0, &extra, &parts.2).is_err());
    }
}
