//! Decoding real files: EXIF orientation, formats, limits.

use crate::common::fixture;
use recognize_agent::vision::decode::{DecodeError, DecodeOptions, decode};

fn opts(exif_transpose: bool) -> DecodeOptions {
    DecodeOptions {
        base64: false,
        exif_transpose,
        max_pixels: 25_000_000,
    }
}

/// Mean absolute difference of two same-sized RGB images.
fn difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

#[test]
fn exif_orientation_turns_the_pixels_upright_only_when_asked() {
    let upright = decode(&fixture("clean/obama.jpg"), &opts(false)).unwrap();
    let stored = fixture("exif/obama_orientation6.jpg");
    let as_stored = decode(&stored, &opts(false)).unwrap();
    let turned = decode(&stored, &opts(true)).unwrap();
    assert_eq!(as_stored.dimensions(), (upright.height(), upright.width()));
    assert_eq!(turned.dimensions(), upright.dimensions());
    assert!(
        difference(&turned, &upright) < 4.0,
        "EXIF-turned image matches the upright original"
    );
}

#[test]
fn alpha_and_greyscale_decode_to_rgb_under_the_pixel_limit() {
    let rgba = image::load_from_memory(&fixture("clean/biden.jpg"))
        .unwrap()
        .into_rgba8();
    let mut png = Vec::new();
    rgba.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let rgb = decode(&png, &opts(true)).unwrap();
    assert_eq!(rgb.dimensions(), rgba.dimensions());
    // A greyscale JPEG has one channel: decoded as RGB with equal channels.
    let grey = decode(&fixture("grey/obama.jpg"), &opts(true)).unwrap();
    assert!(grey.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    let small = DecodeOptions {
        max_pixels: 1000,
        ..opts(true)
    };
    assert!(matches!(
        decode(&fixture("clean/obama.jpg"), &small),
        Err(DecodeError::TooManyPixels { .. })
    ));
}
