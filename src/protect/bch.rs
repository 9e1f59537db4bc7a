//! Binary BCH codes: systematic encoding and bounded-distance decoding.
//!
//! A narrow-sense primitive BCH code of length `n = 2^m − 1` corrects up to `t` flipped
//! bits. Its generator polynomial is the product of the distinct minimal polynomials of
//! α, α², …, α^2t over GF(2^m); decoding computes the syndromes, finds the error locator
//! with Berlekamp–Massey and its roots with a Chien search. No well-kept Rust crate
//! provides binary BCH codes (the one binding found wraps an unmaintained C library), so
//! the code is here, tested against the published generator polynomials and with random
//! error patterns inside and beyond the correction radius.
//!
//! Bits are `u8` values 0 or 1; bit `i` of a word is the coefficient of `x^i`. Codewords
//! are systematic: parity in `[0, n − k)`, message in `[n − k, n)`.

/// Primitive polynomials over GF(2) (with the `x^m` term), for `m` = 3 to 12, as in the
/// usual tables.
const PRIMITIVE: [u32; 10] = [
    0o13, 0o23, 0o45, 0o103, 0o211, 0o435, 0o1021, 0o2011, 0o4005, 0o10123,
];

/// A binary BCH code with its field tables.
#[derive(Debug, Clone)]
pub struct Bch {
    n: usize,
    k: usize,
    t: usize,
    /// `exp[i] = α^i` for `i` in `0..2n`.
    exp: Vec<u16>,
    /// `log[α^i] = i`; `log[0]` is unused.
    log: Vec<u16>,
    /// Generator polynomial bits, degree `n − k`.
    generator: Vec<u8>,
}

impl Bch {
    /// The code of length `2^m − 1` correcting `t` errors; `None` for `m` outside 3 to 12 or
    /// a `t` that leaves no message bits.
    pub fn new(m: u32, t: usize) -> Option<Bch> {
        let poly = *PRIMITIVE.get(m.checked_sub(3)? as usize)?;
        let n = (1usize << m) - 1;
        let (mut exp, mut log) = (vec![0u16; 2 * n], vec![0u16; n + 1]);
        let mut x = 1u32;
        for (i, e) in exp[..n].iter_mut().enumerate() {
            if i > 0 && x == 1 {
                return None; // not primitive
            }
            *e = x as u16;
            log[x as usize] = i as u16;
            x <<= 1;
            if x & (1 << m) != 0 {
                x ^= poly;
            }
        }
        exp.copy_within(..n, n);
        let mut code = Bch {
            n,
            k: 0,
            t,
            exp,
            log,
            generator: vec![1],
        };
        // The product of the minimal polynomials of α^i, one per cyclotomic coset.
        let mut done = vec![false; n];
        for i in 1..=2 * t {
            let i = i % n;
            if done[i] {
                continue;
            }
            let mut minimal = vec![1u16]; // GF(2^m) coefficients
            let mut e = i;
            while !done[e] {
                done[e] = true;
                // minimal · (x + α^e)
                let mut next = vec![0u16; minimal.len() + 1];
                for (d, c) in minimal.iter().enumerate() {
                    next[d + 1] ^= c;
                    next[d] ^= code.mul(*c, code.exp[e]);
                }
                minimal = next;
                e = e * 2 % n;
            }
            let minimal: Vec<u8> = minimal.iter().map(|c| *c as u8).collect();
            code.generator = multiply(&code.generator, &minimal);
        }
        code.k = n.checked_sub(code.generator.len() - 1).filter(|k| *k > 0)?;
        Some(code)
    }

    /// Codeword length in bits.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Message length in bits.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Errors corrected.
    pub fn t(&self) -> usize {
        self.t
    }

    /// The generator polynomial's coefficients, lowest degree first.
    pub fn generator(&self) -> &[u8] {
        &self.generator
    }

    fn mul(&self, a: u16, b: u16) -> u16 {
        if a == 0 || b == 0 {
            0
        } else {
            self.exp[self.log[a as usize] as usize + self.log[b as usize] as usize]
        }
    }

    fn div(&self, a: u16, b: u16) -> u16 {
        if a == 0 {
            0
        } else {
            let (la, lb) = (self.log[a as usize] as usize, self.log[b as usize] as usize);
            self.exp[la + self.n - lb]
        }
    }

    /// The codeword for `message` (`k` bits): parity bits, then the message.
    pub fn encode(&self, message: &[u8]) -> Vec<u8> {
        assert_eq!(message.len(), self.k, "a BCH message is k bits");
        let parity = self.n - self.k;
        // remainder of x^(n−k)·m(x) by g(x), by long division from the top
        let mut word = vec![0u8; self.n];
        word[parity..].copy_from_slice(message);
        let mut rem = word.clone();
        for d in (parity..self.n).rev() {
            if rem[d] == 1 {
                for (j, g) in self.generator.iter().enumerate() {
                    rem[d - parity + j] ^= g;
                }
            }
        }
        word[..parity].copy_from_slice(&rem[..parity]);
        word
    }

    /// The message bits of a codeword.
    pub fn message<'w>(&self, codeword: &'w [u8]) -> &'w [u8] {
        &codeword[self.n - self.k..]
    }

    /// The codeword within `t` flips of `word` (`n` bits), or `None` when the decoder
    /// finds none (more than `t` errors; with more than `t` errors it may also return
    /// another codeword, as every bounded-distance decoder can).
    pub fn decode(&self, word: &[u8]) -> Option<Vec<u8>> {
        assert_eq!(word.len(), self.n, "a BCH word is n bits");
        let syndromes = self.syndromes(word);
        if syndromes.iter().all(|s| *s == 0) {
            return Some(word.to_vec());
        }
        let locator = self.berlekamp_massey(&syndromes);
        let errors = locator.len() - 1;
        if errors > self.t {
            return None;
        }
        // Chien search: position i is in error where Λ(α^−i) = 0.
        let mut fixed = word.to_vec();
        let mut found = 0;
        for (i, bit) in fixed.iter_mut().enumerate() {
            let inverse = (self.n - i) % self.n;
            let value = locator.iter().enumerate().fold(0, |acc, (d, c)| {
                acc ^ self.mul(*c, self.exp[d * inverse % self.n])
            });
            if value == 0 {
                *bit ^= 1;
                found += 1;
            }
        }
        let codeword = found == errors && self.syndromes(&fixed).iter().all(|s| *s == 0);
        codeword.then_some(fixed)
    }

    /// S₁ … S₂ₜ: the word evaluated at α, α², …, α^2t (all zero for a codeword).
    fn syndromes(&self, word: &[u8]) -> Vec<u16> {
        (1..=2 * self.t)
            .map(|j| {
                word.iter()
                    .enumerate()
                    .filter(|(_, bit)| **bit == 1)
                    .fold(0, |s, (i, _)| s ^ self.exp[i * j % self.n])
            })
            .collect()
    }

    /// The error locator polynomial Λ (lowest degree first, trimmed) of the syndromes
    /// S₁ … S₂ₜ.
    fn berlekamp_massey(&self, syndromes: &[u16]) -> Vec<u16> {
        let mut current = vec![1u16];
        let mut previous = vec![1u16];
        let (mut length, mut shift, mut last) = (0usize, 1usize, 1u16);
        for r in 0..syndromes.len() {
            let discrepancy = (1..=length).fold(syndromes[r], |d, i| {
                d ^ self.mul(current.get(i).copied().unwrap_or(0), syndromes[r - i])
            });
            if discrepancy == 0 {
                shift += 1;
                continue;
            }
            let scale = self.div(discrepancy, last);
            let mut next = current.clone();
            next.resize(next.len().max(previous.len() + shift), 0);
            for (i, p) in previous.iter().enumerate() {
                next[i + shift] ^= self.mul(scale, *p);
            }
            if 2 * length <= r {
                previous = std::mem::replace(&mut current, next);
                length = r + 1 - length;
                last = discrepancy;
                shift = 1;
            } else {
                current = next;
                shift += 1;
            }
        }
        current.truncate(length + 1);
        current.resize(length + 1, 0);
        current
    }
}

/// Product of two polynomials over GF(2).
fn multiply(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        if *x == 1 {
            for (j, y) in b.iter().enumerate() {
                out[i + j] ^= y;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reproducible bits and positions (xorshift).
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn bits(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| (self.next() >> 32) as u8 & 1).collect()
        }

        /// `count` distinct positions below `n`.
        fn positions(&mut self, n: usize, count: usize) -> Vec<usize> {
            let mut chosen = Vec::new();
            while chosen.len() < count {
                let p = (self.next() % n as u64) as usize;
                if !chosen.contains(&p) {
                    chosen.push(p);
                }
            }
            chosen
        }
    }

    /// Octal, highest degree first, as the tables print generator polynomials.
    fn octal(g: &[u8]) -> u64 {
        g.iter().rev().fold(0, |acc, bit| acc << 1 | *bit as u64)
    }

    /// The generator polynomials and dimensions of the published table of primitive BCH
    /// codes (Lin & Costello, *Error Control Coding*, appendix C).
    #[test]
    fn generators_match_the_published_table() {
        for (m, t, k, generator) in [
            (4, 1, 11, 0o23),
            (4, 2, 7, 0o721),
            (4, 3, 5, 0o2467),
            (5, 2, 21, 0o3551),
            (5, 3, 16, 0o107657),
            (5, 5, 11, 0o5423325),
        ] {
            let code = Bch::new(m, t).unwrap();
            assert_eq!((code.n(), code.k()), ((1 << m) - 1, k), "m {m}, t {t}");
            assert_eq!(octal(code.generator()), generator, "m {m}, t {t}");
        }
        for (m, t, k) in [(8, 15, 139), (8, 18, 131), (6, 3, 45), (7, 10, 64)] {
            assert_eq!(Bch::new(m, t).unwrap().k(), k, "m {m}, t {t}");
        }
        assert!(Bch::new(2, 1).is_none() && Bch::new(13, 1).is_none());
    }

    /// Up to `t` random flips are corrected; beyond `t`, the sent codeword never comes
    /// back.
    #[test]
    fn corrects_up_to_t_errors_and_no_more() {
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        for (m, t) in [(4, 2), (5, 5), (8, 18), (9, 30)] {
            let code = Bch::new(m, t).unwrap();
            for errors in 0..=t + 6 {
                for _ in 0..8 {
                    let message = noise.bits(code.k());
                    let sent = code.encode(&message);
                    assert_eq!(code.message(&sent), &message[..]);
                    assert_eq!(code.decode(&sent).as_ref(), Some(&sent), "a codeword");
                    let mut received = sent.clone();
                    for p in noise.positions(code.n(), errors) {
                        received[p] ^= 1;
                    }
                    let decoded = code.decode(&received);
                    if errors <= t {
                        assert_eq!(decoded.as_ref(), Some(&sent), "m {m}, {errors} errors");
                    } else {
                        assert_ne!(decoded.as_ref(), Some(&sent), "m {m}, {errors} errors");
                    }
                }
            }
        }
    }
}
