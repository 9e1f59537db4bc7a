//! Image decoding under the agent's default limits, as an enrolment body: raw or base64,
//! with or without the EXIF orientation. Whatever the bytes, an image within the pixel
//! limit or an error; never a crash or an allocation beyond the limits (libFuzzer's
//! `-malloc_limit_mb` catches one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recognize_agent::vision::decode::{DecodeOptions, decode};

/// The agent's default `MAX_PIXELS`.
const MAX_PIXELS: u64 = 25_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let opts = DecodeOptions {
        base64: flags & 1 != 0,
        exif_transpose: flags & 2 != 0,
        max_pixels: MAX_PIXELS,
    };
    if let Ok(image) = decode(body, &opts) {
        assert!(u64::from(image.width()) * u64::from(image.height()) <= MAX_PIXELS);
    }
});
