//! Arithmetic shared by our operators' loops.

/// Whether `f32::mul_add` is one instruction on this target without runtime detection.
pub const NATIVE_FMA: bool = cfg!(any(target_feature = "fma", target_arch = "aarch64"));

/// `a * b + c`, fused when `FMA` (which the caller sets only where it is one instruction).
#[inline(always)]
pub fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `len` reproducible values in [-1, 1) (xorshift), for tests against the definitions.
#[cfg(test)]
pub fn noise(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as f32 / u32::MAX as f32 * 2.0 - 1.0
        })
        .collect()
}
