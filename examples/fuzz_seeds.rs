//! Writes the fuzz targets' seed corpora (`fuzz/seeds/TARGET/`) from the public test
//! photos: small images in every format the agent decodes, raw and base64; requests as
//! clients send them, framed every way the front accepts; the states of a real
//! enrolment, and a version-1 state; backend calls. Each seed is a file named after what it is.
//! `fuzz_seeds [DIR]` (default `fuzz/seeds`).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat};
use recognize_agent::contract::Scenario;
use recognize_agent::enroll::Enroller;
use recognize_agent::protect::issue::Issuer;
use recognize_agent::protect::keys::KeyFile;
use recognize_agent::protect::seal::SealingKey;
use recognize_agent::protect::states::ClientType;
use recognize_agent::vision::decode::DecodeOptions;
use recognize_agent::vision::filters::Policy;
use recognize_agent::vision::{Models, default_models_dir, default_precision};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or("fuzz/seeds".into()));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let photo = image::open(fixtures.join("clean/obama.jpg"))?;
    let small = photo.resize(48, 48, FilterType::Triangle);

    // decode: a flag byte (1 base64, 2 EXIF orientation), then the body.
    let mut images = Vec::new();
    for (name, format) in [
        ("jpeg", ImageFormat::Jpeg),
        ("png", ImageFormat::Png),
        ("gif", ImageFormat::Gif),
        ("bmp", ImageFormat::Bmp),
        ("webp", ImageFormat::WebP),
        ("tiff", ImageFormat::Tiff),
        ("ico", ImageFormat::Ico),
        ("pnm", ImageFormat::Pnm),
        ("qoi", ImageFormat::Qoi),
        ("tga", ImageFormat::Tga),
    ] {
        images.push((name.to_string(), encode(&small, format)?));
    }
    let grey = DynamicImage::ImageLuma8(small.to_luma8());
    images.push(("png-grey".into(), encode(&grey, ImageFormat::Png)?));
    let decode = out.join("decode");
    for (name, bytes) in &images {
        write(&decode, name, &[&[0], bytes])?;
        write(
            &decode,
            &format!("{name}-base64"),
            &[&[1], STANDARD.encode(bytes).as_bytes()],
        )?;
    }
    // The small JPEG with the EXIF block (orientation 6) of the fixture that has one.
    let exif = app1(&std::fs::read(
        fixtures.join("exif/obama_orientation6.jpg"),
    )?)?;
    let jpeg = &images[0].1;
    write(
        &decode,
        "jpeg-exif-orientation",
        &[&[2], &jpeg[..2], &exif, &jpeg[2..]],
    )?;

    // front: a byte saying how many bytes arrive per read, then what the client sends.
    let front = out.join("front");
    let jpeg = &images[0].1;
    let head = |extra: &str, length: &str| {
        format!(
            "POST /v1/offline-enrollment HTTP/1.1\r\nHost: agent\r\nScenario: SELFIE\r\n\
             {extra}{length}\r\n"
        )
    };
    let sized = head("", &format!("Content-Length: {}\r\n", jpeg.len()));
    write(&front, "enrol-length", &[&[255], sized.as_bytes(), jpeg])?;
    write(&front, "enrol-trickled", &[&[1], sized.as_bytes(), jpeg])?;
    let mut chunked =
        head("Exif-Transpose: true\r\n", "Transfer-Encoding: chunked\r\n").into_bytes();
    for part in jpeg.chunks(700) {
        chunked.extend(format!("{:x};ext=1\r\n", part.len()).bytes());
        chunked.extend(part);
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\nTrailer: x\r\n\r\n");
    write(&front, "enrol-chunked", &[&[64], &chunked])?;
    let text = STANDARD.encode(jpeg);
    let base64 = head(
        "Content-Encoding: base64\r\nExpect: 100-continue\r\n",
        &format!("Content-Length: {}\r\n", text.len()),
    );
    write(
        &front,
        "enrol-base64-expect",
        &[&[128], base64.as_bytes(), text.as_bytes()],
    )?;
    let json = r#"{"serverState":"rcs1.e30"}"#;
    let register = format!(
        "POST /v1/users HTTP/1.1\nhost: backend\nx-api-key: k\ncontent-type: application/json\n\
         content-length: {}\n\n{json}",
        json.len()
    );
    write(&front, "register-bare-lf", &[&[255], register.as_bytes()])?;
    let health = "GET /health-check?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    write(&front, "health-1.0", &[&[255], health.as_bytes()])?;

    // states: a real enrolment's states, and a version-1 one.
    let models = Models::load(&default_models_dir(), default_precision()?)?;
    let issuer = Issuer::new(
        KeyFile::ephemeral()?,
        SealingKey::from_secret(&[5; 32]).public().clone(),
    );
    let enroller = Enroller::new(models, Scenario::ALL.map(Policy::for_scenario), issuer);
    let body = std::fs::read(fixtures.join("clean/obama.jpg"))?;
    let enrolled = enroller
        .enroll(
            &body,
            Scenario::Selfie,
            ClientType::Backup,
            &DecodeOptions::file(25_000_000),
        )?
        .into_result()
        .map_err(|refused| refused.detail)?;
    let states = out.join("states");
    write(&states, "client", &[enrolled.client_state.as_bytes()])?;
    write(&states, "server", &[enrolled.server_state.as_bytes()])?;
    write(&states, "version-1", &[b"rcc1.eyJrZXlsZXNzSWQiOiJrIn0"])?;

    // backend: method (0 GET, 1 POST, 2 DELETE), flags (1 no key, 2 signed and sealed
    // state with the body as keylessId, 4 binding request with the body as template, the
    // enrolled one if empty, 8 a bad signature, 16 the admin key), then path, newline,
    // body.
    let backend = out.join("backend");
    let calls: [(&str, u8, u8, &str); 12] = [
        ("health", 0, 0, "/health-check\n"),
        ("health-no-key", 0, 1, "/health-check\n"),
        ("openapi", 0, 1, "/openapi.yaml\n"),
        (
            "register-signed",
            1,
            2,
            "/v1/uncommitted-users\n5bf847c3-9552-4ae4-974b-6220406c26a3",
        ),
        (
            "register-version-1",
            1,
            0,
            "/v1/users\n{\"serverState\":\"rcs1.e30\"}",
        ),
        ("commit", 1, 0, "/v1/uncommitted-users/u1/commit\n"),
        ("devices", 0, 0, "/v1/users/u1/devices\n"),
        ("delete", 2, 0, "/v1/users/u1/devices/d1\n"),
        ("delete-user", 2, 16, "/v1/users/u1\n"),
        ("unlock", 1, 16, "/v1/users/u1/unlock\n"),
        ("bind", 1, 4, "\n"),
        ("bind-other", 1, 4, "\nABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
    ];
    for (name, method, flags, call) in calls {
        write(&backend, name, &[&[method, flags], call.as_bytes()])?;
    }
    write(&backend, "bind-bad-signature", &[&[1, 12], b"\n"])?;
    Ok(())
}

/// A JPEG's APP1 (EXIF) segment, marker and length included.
fn app1(jpeg: &[u8]) -> Result<Vec<u8>> {
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at] == 0xFF {
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if jpeg[at + 1] == 0xE1 {
            return Ok(jpeg[at..at + 2 + length].to_vec());
        }
        at += 2 + length;
    }
    Err("no EXIF segment".into())
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let image = match format {
        // Formats without 8-bit RGB in the encoder get RGBA.
        ImageFormat::Ico | ImageFormat::Qoi => DynamicImage::ImageRgba8(image.to_rgba8()),
        _ => image.clone(),
    };
    image.write_to(&mut Cursor::new(&mut bytes), format)?;
    Ok(bytes)
}

fn write(dir: &Path, name: &str, parts: &[&[u8]]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), parts.concat())?;
    Ok(())
}
