//! Request body → RGB image: optional base64, format sniffing, limits, EXIF orientation.

use std::io::Cursor;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbImage};

/// How to decode one request body.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    /// The body is base64 text (`Content-Encoding: base64`).
    pub base64: bool,
    /// Apply the EXIF orientation (`Exif-Transpose: true`).
    pub exif_transpose: bool,
    /// Largest accepted width × height.
    pub max_pixels: u64,
}

impl DecodeOptions {
    /// A plain image file (not base64) with its EXIF orientation applied.
    pub fn file(max_pixels: u64) -> DecodeOptions {
        DecodeOptions {
            base64: false,
            exif_transpose: true,
            max_pixels,
        }
    }
}

/// Why a body could not become an image.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    Base64,
    UnknownFormat,
    TooManyPixels { width: u32, height: u32, max: u64 },
    Corrupt(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("the request body is empty; send the image bytes"),
            DecodeError::Base64 => f.write_str("Content-Encoding is base64 but the body is not valid base64"),
            DecodeError::UnknownFormat => f.write_str("the body is not an image in a supported format (JPEG, PNG, BMP, WebP, TIFF, GIF, ...)"),
            DecodeError::TooManyPixels { width, height, max } => {
                write!(f, "the image is {width}x{height} pixels; at most {max} pixels are accepted")
            }
            DecodeError::Corrupt(why) => write!(f, "the image could not be decoded: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a request body into an 8-bit RGB image under `opts`' limits.
pub fn decode(body: &[u8], opts: &DecodeOptions) -> Result<RgbImage, DecodeError> {
    let decoded;
    let bytes = if opts.base64 {
        decoded = decode_base64(body)?;
        &decoded[..]
    } else {
        body
    };
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(DecodeError::UnknownFormat);
    }
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > opts.max_pixels {
        return Err(DecodeError::TooManyPixels {
            width,
            height,
            max: opts.max_pixels,
        });
    }
    // Worst case a decoder holds RGBA 16-bit output plus a scratch copy.
    let mut limits = Limits::default();
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(16).max(1 << 20));
    decoder.set_limits(limits).map_err(image_error)?;
    let orientation = if opts.exif_transpose {
        decoder.orientation().ok()
    } else {
        None
    };
    let mut image = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(image.into_rgb8())
}

// Both alphabets and optional padding are accepted, as clients differ.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

fn decode_base64(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if text.is_empty() {
        return Err(DecodeError::Empty);
    }
    STANDARD
        .decode(&text)
        .or_else(|_| URL_SAFE.decode(&text))
        .map_err(|_| DecodeError::Base64)
}

fn image_error(e: ImageError) -> DecodeError {
    match e {
        ImageError::Unsupported(_) => DecodeError::UnknownFormat,
        ImageError::Limits(l) => DecodeError::Corrupt(format!("decoding limit exceeded ({l})")),
        other => DecodeError::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DecodeOptions {
        DecodeOptions {
            base64: false,
            exif_transpose: false,
            max_pixels: 1 << 20,
        }
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(width, height, image::Rgb([10, 200, 30]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn decodes_plain_and_base64() {
        let bytes = png(4, 3);
        let img = decode(&bytes, &opts()).unwrap();
        assert_eq!(
            (img.width(), img.height(), img.get_pixel(1, 1).0),
            (4, 3, [10, 200, 30])
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let wrapped: Vec<u8> = b64
            .as_bytes()
            .chunks(10)
            .flat_map(|c| [c, b"\r\n"].concat())
            .collect();
        let img = decode(
            &wrapped,
            &DecodeOptions {
                base64: true,
                ..opts()
            },
        )
        .unwrap();
        assert_eq!(img.dimensions(), (4, 3));
    }

    #[test]
    fn rejects_bad_input_with_reasons() {
        assert_eq!(decode(b"", &opts()), Err(DecodeError::Empty));
        assert_eq!(
            decode(b"hello world", &opts()),
            Err(DecodeError::UnknownFormat)
        );
        let b64 = DecodeOptions {
            base64: true,
            ..opts()
        };
        assert_eq!(decode(b"***not base64***", &b64), Err(DecodeError::Base64));
        let mut truncated = png(64, 64);
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(
            decode(&truncated, &opts()),
            Err(DecodeError::Corrupt(_))
        ));
        let small = DecodeOptions {
            max_pixels: 100,
            ..opts()
        };
        assert_eq!(
            decode(&png(20, 10), &small),
            Err(DecodeError::TooManyPixels {
                width: 20,
                height: 10,
                max: 100
            })
        );
    }
}
