//! Benchmarks printed as JSON lines for `scripts/bench`:
//! `bench stages` — per-stage latency of one enrolment (with the optional liveness check),
//! and of the kiosk's advice on one frame;
//! `bench models RUNS` — the run times of each model (`scripts/bench` alternates these
//! with onnxruntime's, so that both see the same machine load);
//! `bench load ADDR SECONDS CLIENTS IMAGE` — enrolments per second over HTTP;
//! `bench selfie WIDTH HEIGHT FILE` — writes a test selfie of that size (JPEG).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use image::{RgbImage, imageops};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use recognize_agent::backend::messages::bind_message;
use recognize_agent::capture::assess::assess;
use recognize_agent::contract::Scenario;
use recognize_agent::enroll::Enroller;
use recognize_agent::kiosk::preview;
use recognize_agent::protect::issue::Issuer;
use recognize_agent::protect::keys::{self, KeyFile};
use recognize_agent::protect::rotation::Template;
use recognize_agent::protect::seal::SealingKey;
use recognize_agent::protect::states::ClientType;
use recognize_agent::protect::states::{self, ServerState};
use recognize_agent::recovery;
use recognize_agent::vision::decode::{DecodeOptions, decode};
use recognize_agent::vision::filters::{Policy, evaluate};
use recognize_agent::vision::liveness::Liveness;
use recognize_agent::vision::{Models, align, default_models_dir, default_precision, model};
use tract_nnef::prelude::*;

const RUNS: usize = 40;

/// `runs` run times of `f` in milliseconds, after three warm-up runs.
fn samples<T>(runs: usize, mut f: impl FnMut() -> T) -> Vec<f64> {
    for _ in 0..3 {
        std::hint::black_box(f());
    }
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

/// Median and 90th percentile of `f`'s run time, in milliseconds.
fn time<T>(f: impl FnMut() -> T) -> (f64, f64) {
    let mut ms = samples(RUNS, f);
    ms.sort_by(f64::total_cmp);
    (ms[RUNS / 2], ms[RUNS * 9 / 10])
}

/// The portrait the benchmark selfies are made of (a public test photo).
fn portrait() -> image::ImageResult<RgbImage> {
    let path = format!(
        "{}/tests/fixtures/clean/obama.jpg",
        env!("CARGO_MANIFEST_DIR")
    );
    Ok(image::open(path)?.into_rgb8())
}

/// A selfie of the given size: the portrait scaled to fill the frame's height, centred.
fn selfie(portrait: &RgbImage, width: u32, height: u32) -> Vec<u8> {
    let scale = height as f32 / portrait.height() as f32;
    let scaled = imageops::resize(
        portrait,
        (portrait.width() as f32 * scale) as u32,
        height,
        imageops::FilterType::CatmullRom,
    );
    let mut frame = RgbImage::from_pixel(width, height, image::Rgb([120, 110, 100]));
    let x = (width as i64 - scaled.width() as i64) / 2;
    imageops::overlay(&mut frame, &scaled, x, 0);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&frame)
        .expect("encode");
    jpeg
}

fn stages(out_dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    let dir = default_models_dir();
    let policies = Scenario::ALL.map(Policy::for_scenario);
    let liveness = Liveness::load(&dir, default_precision()?)?;
    let sealing = SealingKey::from_secret(&[5; 32]);
    let enroller = Enroller::new(
        Models::load(&dir, default_precision()?)?,
        policies,
        Issuer::new(KeyFile::ephemeral()?, sealing.public().clone()),
    );
    let portrait = portrait()?;
    let opts = DecodeOptions {
        base64: false,
        exif_transpose: true,
        max_pixels: 50_000_000,
    };
    let policy = Policy::for_scenario(Scenario::Selfie);
    for (w, h) in [(640, 480), (1920, 1080)] {
        let jpeg = selfie(&portrait, w, h);
        std::fs::write(format!("{out_dir}/selfie_{w}x{h}.jpg"), &jpeg)?;
        let image = decode(&jpeg, &opts)?;
        let models = &enroller.models;
        let faces = models.detector.detect(&image)?;
        let face = *faces.first().ok_or("no face in the benchmark selfie")?;
        let analysis = models.analyse(&image)?;
        let embedding = analysis
            .primary
            .as_ref()
            .ok_or("no clear face in the benchmark selfie")?
            .embedding
            .clone();
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let issue = |rng: &mut ChaCha20Rng| {
            enroller.issuer().issue(
                &embedding.vector,
                Scenario::Selfie,
                ClientType::Backup,
                0,
                rng,
            )
        };
        let states = issue(&mut rng)?;
        let client = recovery::client_state(&states.client_state)?;
        let server = states::decode::<ServerState>(&states.server_state)?.state;
        let device = KeyFile::ephemeral()?;
        let enrolled = server.open_template(&sealing)?;
        let bind = recovery::bind_request(
            &client.keyless_id,
            &states::b64(&[9; 32]),
            &recovery::probe(&client, &embedding),
            &device,
        )?;
        let rows = [
            ("decode", time(|| decode(&jpeg, &opts).map(|i| i.width()))),
            (
                "detect",
                time(|| models.detector.detect(&image).map(|f| f.len())),
            ),
            (
                "align+embed",
                time(|| {
                    models
                        .embedder
                        .embed(&align::align(&image, &face))
                        .map(|e| e.raw_norm)
                }),
            ),
            (
                "analyse: detect, verify, embed, measure",
                time(|| models.analyse(&image).map(|a| a.faces.len())),
            ),
            ("filters", time(|| evaluate(&analysis, &policy))),
            (
                "protect: rotation, sealed template, signed states",
                time(|| issue(&mut rng).map(|s| s.server_state.len())),
            ),
            (
                "device: rotate a selfie, sign the binding request",
                time(|| {
                    let probe = recovery::probe(&client, &embedding);
                    recovery::bind_request(&client.keyless_id, &bind.challenge, &probe, &device)
                        .map(|b| b.signature.len())
                }),
            ),
            (
                "backend registration: open the sealed template",
                time(|| server.open_template(&sealing).map(|t| t.0.len())),
            ),
            (
                "backend decision: device signature, match",
                time(|| {
                    let template = states::bytes(&bind.template, "template")
                        .ok()
                        .and_then(|t| Template::from_bytes(&t))
                        .expect("the device's template");
                    let message = bind_message(
                        &client.keyless_id,
                        &[9; 32],
                        &device.public(),
                        &template.to_bytes(),
                    );
                    let signature = states::bytes(&bind.signature, "signature").unwrap_or_default();
                    keys::verify(&device.public(), &message, &signature)
                        && enrolled.cosine(&template) > 0.5
                }),
            ),
            (
                "liveness check (SELFIE, when on)",
                time(|| liveness.score(&image, &face)),
            ),
            (
                "kiosk advice: decode, assess (filters, sharpness, pose)",
                time(|| {
                    let frame = decode(&jpeg, &opts).expect("decoded above");
                    assess(models, &frame, &policy).map(|a| a.guidance)
                }),
            ),
            (
                "kiosk preview JPEG",
                time(|| preview(&image).map(|j| j.len())),
            ),
            (
                "total",
                time(|| {
                    enroller
                        .enroll(&jpeg, Scenario::Selfie, ClientType::Backup, &opts)
                        .is_ok()
                }),
            ),
        ];
        for (stage, (p50, p90)) in rows {
            println!(
                "{}",
                serde_json::json!({"kind": "stage", "image": format!("{w}x{h}"), "stage": stage, "p50_ms": p50, "p90_ms": p90})
            );
        }
    }
    Ok(())
}

/// `runs` run times of each model on a fixed input, one JSON line per model.
fn models(runs: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = default_models_dir();
    let models = [
        ("blazeface_front_128.onnx", [1, 128, 128, 3]),
        ("blazeface_back_256.onnx", [1, 256, 256, 3]),
        ("mobilefacenet.onnx", [1, 112, 112, 3]),
        ("face_anti_spoofing.onnx", [1, 256, 256, 3]),
    ];
    let precision = default_precision()?;
    for (file, shape) in models {
        let plan = model::load(&dir.join(file), &shape, &[], precision)?;
        let input: Tensor = tract_ndarray::Array4::<f32>::from_shape_fn(shape, |(_, y, x, c)| {
            ((x * 7 + y * 3 + c) % 255) as f32 / 127.5 - 1.0
        })
        .into();
        let ms = samples(runs, || plan.run(input.clone()).map(|o| o.len()));
        println!(
            "{}",
            serde_json::json!({"kind": "model", "model": file, "samples_ms": ms})
        );
    }
    Ok(())
}

fn post(addr: &str, body: &[u8]) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "POST /v1/offline-enrollment HTTP/1.1\r\nHost: b\r\nScenario: SELFIE\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    Ok(response
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

fn load(
    addr: &str,
    seconds: f64,
    clients: usize,
    image: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let body = std::fs::read(image)?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let counts: Vec<(usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let (mut ok, mut other) = (0, 0);
                    while Instant::now() < deadline {
                        match post(addr, &body) {
                            Ok(200) => ok += 1,
                            _ => other += 1,
                        }
                    }
                    (ok, other)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, 0)))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let ok: usize = counts.iter().map(|c| c.0).sum();
    let other: usize = counts.iter().map(|c| c.1).sum();
    println!(
        "{}",
        serde_json::json!({"kind": "load", "clients": clients, "seconds": elapsed, "ok": ok, "other": other, "per_second": ok as f64 / elapsed})
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    model::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["stages", out_dir] => stages(out_dir),
        ["models", runs] => models(runs.parse()?),
        ["load", addr, seconds, clients, image] => {
            load(addr, seconds.parse()?, clients.parse()?, image)
        }
        ["selfie", width, height, file] => Ok(std::fs::write(
            file,
            selfie(&portrait()?, width.parse()?, height.parse()?),
        )?),
        _ => Err("usage: bench stages OUT_DIR | bench models RUNS | \
                  bench load ADDR SECONDS CLIENTS IMAGE | bench selfie WIDTH HEIGHT FILE"
            .into()),
    }
}
