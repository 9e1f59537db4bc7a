//! The template protection measured on real faces: bit error rates and key release for
//! controlled variants of one photo, distinct photos of one person and impostor pairs;
//! what an attacker holding only a client state can rebuild; the time protection adds.
//! Prints Markdown tables (`scripts/protection` runs it on the project's photos).
//!
//! `protection [--trials N] PHOTO… [--group IMAGE…] [--same A=B…]`: each PHOTO is one
//! person's photo (identity: the file name up to its first digit or `_`), enrolled and
//! probed with its variants made here (crop, JPEG quality 30, light ×0.7 and ×1.3,
//! rotation ±10°); every face of each group IMAGE is a person of its own, unless `--same
//! IMAGE#i=IMAGE#j` says two faces are one person. Embeddings stay in memory.

use std::time::Instant;

use image::{RgbImage, imageops};
use recognize_agent::protect::keys::biometric_key;
use recognize_agent::protect::sketch::{Sketch, code};
use recognize_agent::protect::template::{self, KEPT, PROJECTED};
use recognize_agent::vision::embed::{DIM, Embedding};
use recognize_agent::vision::{Models, align, decode, default_models_dir, default_precision};

struct Face {
    identity: String,
    photo: String,
    embedding: Embedding,
}

fn identity(path: &str) -> String {
    stem(path)
        .split(|c: char| c == '_' || c.is_ascii_digit())
        .next()
        .unwrap_or_default()
        .to_string()
}

fn stem(path: &str) -> String {
    std::path::Path::new(path)
        .file_stem()
        .map_or(path.into(), |s| s.to_string_lossy().into_owned())
}

/// `image` turned by `degrees` about its centre (bilinear, grey outside).
fn rotate(image: &RgbImage, degrees: f32) -> RgbImage {
    let (w, h) = image.dimensions();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let (sx, sy) = (cos * dx + sin * dy + cx, -sin * dx + cos * dy + cy);
        if sx < 0.0 || sy < 0.0 || sx >= (w - 1) as f32 || sy >= (h - 1) as f32 {
            return image::Rgb([128, 128, 128]);
        }
        let (x0, y0) = (sx as u32, sy as u32);
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let p = |x, y| image.get_pixel(x, y).0.map(f32::from);
        let (a, b, c, d) = (p(x0, y0), p(x0 + 1, y0), p(x0, y0 + 1), p(x0 + 1, y0 + 1));
        image::Rgb(std::array::from_fn(|i| {
            let top = a[i] + (b[i] - a[i]) * fx;
            let bottom = c[i] + (d[i] - c[i]) * fx;
            (top + (bottom - top) * fy).round() as u8
        }))
    })
}

/// The controlled variants of one photo, named.
fn variants(image: &RgbImage) -> Vec<(&'static str, RgbImage)> {
    let (w, h) = image.dimensions();
    let crop = imageops::crop_imm(image, w / 10, h / 10, w * 8 / 10, h * 8 / 10).to_image();
    let mut jpeg = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 30);
    image
        .write_with_encoder(encoder)
        .expect("JPEG encoding in memory");
    let jpeg = image::load_from_memory(&jpeg)
        .expect("own JPEG")
        .into_rgb8();
    let light = |f: f32| {
        let mut out = image.clone();
        out.pixels_mut()
            .for_each(|p| p.0 = p.0.map(|v| (v as f32 * f).min(255.0) as u8));
        out
    };
    vec![
        ("original", image.clone()),
        ("crop", crop),
        ("jpeg30", jpeg),
        ("dark", light(0.7)),
        ("bright", light(1.3)),
        ("rot+10", rotate(image, 10.0)),
        ("rot-10", rotate(image, -10.0)),
    ]
}

/// What an attacker can compute from a client state alone: the direction most aligned
/// with the kept projection rows and least with the others (the top eigenvector of
/// their second-moment difference, by power iteration), as an embedding.
fn rebuild(rows: &[[f64; DIM]], selection: &[u16]) -> Embedding {
    let kept: Vec<bool> = (0..PROJECTED)
        .map(|i| selection.binary_search(&(i as u16)).is_ok())
        .collect();
    let mut m = vec![[0.0f64; DIM]; DIM];
    for (row, kept) in rows.iter().zip(&kept) {
        let weight = if *kept {
            1.0 / KEPT as f64
        } else {
            -1.0 / (PROJECTED - KEPT) as f64
        };
        for i in 0..DIM {
            for j in 0..DIM {
                m[i][j] += weight * row[i] * row[j];
            }
        }
    }
    // Shift so that the largest eigenvalue is also the largest in magnitude.
    (0..DIM).for_each(|i| m[i][i] += 4.0);
    let mut v = [1.0f64 / (DIM as f64).sqrt(); DIM];
    for _ in 0..300 {
        let next: Vec<f64> = m
            .iter()
            .map(|r| r.iter().zip(&v).map(|(a, b)| a * b).sum())
            .collect();
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = std::array::from_fn(|i| next[i] / norm);
    }
    Embedding {
        vector: v.map(|x| x as f32),
        raw_norm: 1.0,
    }
}

fn negated(e: &Embedding) -> Embedding {
    Embedding {
        vector: e.vector.map(|x| -x),
        raw_norm: e.raw_norm,
    }
}

/// The template bits of `e` under `rows` at `sketch`'s selection.
fn bits(rows: &[[f64; DIM]], sketch: &Sketch, e: &Embedding) -> Vec<u8> {
    let projected: Vec<f32> = rows.iter().map(|r| template::projection(r, e)).collect();
    template::bits(&projected, &sketch.selection)
}

fn differing(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
}

#[derive(Default)]
struct Tally {
    errors: Vec<f64>,
    released: usize,
}

impl Tally {
    fn row(&self, what: &str) -> String {
        let n = self.errors.len();
        let mean = self.errors.iter().sum::<f64>() / n.max(1) as f64;
        let min = self.errors.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self
            .errors
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        format!(
            "| {what} | {n} | {:.1} % [{:.1}, {:.1}] | {} of {n} ({:.1} %) |",
            100.0 * mean,
            100.0 * min,
            100.0 * max,
            self.released,
            100.0 * self.released as f64 / n.max(1) as f64
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let models = Models::load(&default_models_dir(), default_precision()?)?;
    let opts = decode::DecodeOptions::file(50_000_000);
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut trials = 3;
    if let Some(at) = args.iter().position(|a| a == "--trials") {
        trials = args.get(at + 1).ok_or("--trials N")?.parse()?;
        args.drain(at..at + 2);
    }
    let mut same: Vec<(String, String)> = Vec::new();
    while let Some(at) = args.iter().position(|a| a == "--same") {
        let pair = args.get(at + 1).ok_or("--same A=B")?;
        let (a, b) = pair.split_once('=').ok_or("--same A=B")?;
        same.push((a.to_string(), b.to_string()));
        args.drain(at..at + 2);
    }
    let mut faces: Vec<Face> = Vec::new();
    let mut group = false;
    for arg in &args {
        if arg == "--group" {
            group = true;
            continue;
        }
        let image = decode::decode(&std::fs::read(arg)?, &opts)?;
        if group {
            for (n, face) in models.detector.detect(&image)?.iter().enumerate() {
                let name = format!("{}#{n}", stem(arg));
                let identity = same
                    .iter()
                    .find(|(_, b)| *b == name)
                    .map_or(name.clone(), |(a, _)| a.clone());
                let embedding = models.embedder.embed(&align::align(&image, face))?;
                faces.push(Face {
                    identity,
                    photo: name,
                    embedding,
                });
            }
            continue;
        }
        for (variant, image) in variants(&image) {
            match models.analyse(&image)?.primary {
                Some(primary) => faces.push(Face {
                    identity: identity(arg),
                    photo: stem(arg),
                    embedding: primary.embedding,
                }),
                None => eprintln!("{arg} ({variant}): no face"),
            }
        }
    }
    let (mut controlled, mut distinct, mut impostor, mut attack) = (
        Tally::default(),
        Tally::default(),
        Tally::default(),
        Tally::default(),
    );
    let (mut attack_cos, mut enrol_ms, mut recover_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..trials {
        for (a, enrolled) in faces.iter().enumerate() {
            let started = Instant::now();
            let (sketch, secret) = Sketch::enrol(&enrolled.embedding).map_err(|e| e.to_string())?;
            let _ = biometric_key(&secret, b"salt");
            enrol_ms.push(started.elapsed().as_secs_f64() * 1e3);
            // Recovery as a device runs it, timed once per enrolment.
            let started = Instant::now();
            if let Some(got) = sketch.recover(&enrolled.embedding) {
                let _ = biometric_key(&got, b"salt");
            }
            recover_ms.push(started.elapsed().as_secs_f64() * 1e3);
            // The same decoding for every probe, the projection rows drawn once.
            let rows: Vec<[f64; DIM]> = template::rows(&sketch.seed).collect();
            let enrolled_bits = bits(&rows, &sketch, &enrolled.embedding);
            let try_probe = |tally: &mut Tally, e: &Embedding| {
                let probe = bits(&rows, &sketch, e);
                tally.errors.push(differing(&enrolled_bits, &probe));
                tally.released +=
                    usize::from(sketch.recover_bits(&probe).as_deref() == Some(&*secret));
            };
            for (_, probe) in faces.iter().enumerate().filter(|(b, _)| *b != a) {
                let tally = if probe.identity != enrolled.identity {
                    &mut impostor
                } else if probe.photo == enrolled.photo {
                    &mut controlled
                } else {
                    &mut distinct
                };
                try_probe(tally, &probe.embedding);
            }
            // The attacker does not know the sign: the better candidate counts.
            let rebuilt = rebuild(&rows, &sketch.selection);
            let cos = enrolled.embedding.cosine(&rebuilt);
            attack_cos.push(cos.abs() as f64);
            try_probe(
                &mut attack,
                &if cos >= 0.0 {
                    rebuilt
                } else {
                    negated(&rebuilt)
                },
            );
        }
    }
    let people = {
        let mut ids: Vec<&str> = faces.iter().map(|f| f.identity.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    println!(
        "{} faces of {people} people, {trials} enrolments each (a fresh seed and secret \
         each time); code BCH({}, {}, t = {}): {} key bits; template {KEPT} of {PROJECTED} \
         projections.\n",
        faces.len(),
        code().n(),
        code().k(),
        code().t(),
        code().k()
    );
    println!(
        "| pairs (enrolled, probe) | trials | bit error rate, mean [min, max] | key released |"
    );
    println!("|---|---|---|---|");
    println!("{}", controlled.row("same photo, controlled variants"));
    println!("{}", distinct.row("same person, distinct photos"));
    println!("{}", impostor.row("different people"));
    println!(
        "{}",
        attack.row(&format!(
            "rebuilt from the client state alone (cosine to the enrolled face {:.2})",
            attack_cos.iter().sum::<f64>() / attack_cos.len().max(1) as f64
        ))
    );
    println!(
        "\nTime the protection adds (median): enrolment {:.2} ms, recovery {:.2} ms.",
        median(enrol_ms),
        median(recover_ms)
    );
    Ok(())
}
