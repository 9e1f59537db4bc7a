//! The fuzzy commitment a client state carries, as a device decodes it against the bits
//! of a selfie: the parts (projection seed, reliable-bit mask, helper data) checked, then
//! the BCH decoder on any word. Whatever the bytes, never a crash; what the decoder
//! returns is a codeword within `t` flips of the word.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recognize_agent::protect::sketch::{Sketch, code};
use recognize_agent::protect::template::{KEPT, PROJECTED};

/// Bits packed least significant first, as the state stores them.
fn bits(bytes: &[u8], n: usize) -> Vec<u8> {
    (0..n).map(|i| bytes.get(i / 8).map_or(0, |b| b >> (i % 8) & 1)).collect()
}

fuzz_target!(|data: &[u8]| {
    let code = code();
    // The word a selfie's bits and the helper data give: any n bits.
    let word = bits(data, code.n());
    if let Some(codeword) = code.decode(&word) {
        let flips = word.iter().zip(&codeword).filter(|(a, b)| a != b).count();
        assert!(flips <= code.t(), "{flips} flips");
        assert_eq!(code.decode(&codeword).as_ref(), Some(&codeword));
    }
    // The parts as a state holds them, then recovery against the selfie's bits.
    let (seed, mask, helper) = (32, PROJECTED.div_ceil(8), KEPT.div_ceil(8));
    if data.len() >= seed + mask + helper {
        let (s, rest) = data.split_at(seed);
        let (m, rest) = rest.split_at(mask);
        let (h, selfie) = rest.split_at(helper);
        // A mask rarely keeps exactly KEPT bits by chance: also try the first KEPT kept.
        let fitted: Vec<u8> = {
            let mut kept = 0;
            let mut out = vec![0u8; mask];
            for i in 0..PROJECTED {
                if kept < KEPT && (m[i / 8] >> (i % 8) & 1 == 1 || PROJECTED - i <= KEPT - kept) {
                    out[i / 8] |= 1 << (i % 8);
                    kept += 1;
                }
            }
            out
        };
        for m in [m, &fitted[..]] {
            if let Ok(sketch) = Sketch::from_parts(s, m, h) {
                assert_eq!(sketch.mask_bytes(), m);
                let _ = sketch.recover_bits(&bits(selfie, KEPT));
            }
        }
    }
});
