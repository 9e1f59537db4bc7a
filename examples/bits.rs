//! Bit error rates of binarised embeddings between genuine and impostor pairs, the figures
//! that choose the template protection's code (a development aid; prints a table).
//!
//! `bits IMAGE… [--group IMAGE…]`: one face per image before `--group` (identity: the file
//! name up to its first digit or `_`, so `obama2_dark.jpg` is `obama`), every face of the
//! images after it (each face its own identity). Embeddings stay in memory.

use recognize_agent::vision::embed::{DIM, Embedding};
use recognize_agent::vision::{Models, align, decode, default_models_dir, default_precision};

/// Gaussian rows from a fixed seed (xorshift and Box–Muller: a measurement, not a secret).
fn projection(rows: usize, seed: u64) -> Vec<[f32; DIM]> {
    let mut state = seed | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..rows)
        .map(|_| {
            std::array::from_fn(|_| {
                let (u, v) = (uniform().max(1e-12), uniform());
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
            })
        })
        .collect()
}

fn project(rows: &[[f32; DIM]], e: &Embedding) -> Vec<f32> {
    rows.iter()
        .map(|r| r.iter().zip(&e.vector).map(|(a, b)| a * b).sum())
        .collect()
}

/// Fraction of `kept` bits whose signs differ.
fn ber(a: &[f32], b: &[f32], kept: &[usize]) -> f64 {
    let wrong = kept
        .iter()
        .filter(|&&i| (a[i] > 0.0) != (b[i] > 0.0))
        .count();
    wrong as f64 / kept.len() as f64
}

/// The `n` indices of the largest magnitudes of `p`.
fn most_reliable(p: &[f32], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&i, &j| p[j].abs().total_cmp(&p[i].abs()));
    order.truncate(n);
    order
}

fn identity(path: &str) -> String {
    let stem = std::path::Path::new(path)
        .file_stem()
        .map_or(path.into(), |s| s.to_string_lossy().into_owned());
    stem.split(|c: char| c == '_' || c.is_ascii_digit())
        .next()
        .unwrap_or_default()
        .to_string()
}

fn stats(values: &[f64]) -> String {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{mean:.3} [{min:.3}, {max:.3}]")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let models = Models::load(&default_models_dir(), default_precision()?)?;
    let opts = decode::DecodeOptions::file(50_000_000);
    let mut faces: Vec<(String, Embedding)> = Vec::new();
    let mut group = false;
    for arg in std::env::args().skip(1) {
        if arg == "--group" {
            group = true;
            continue;
        }
        let image = decode::decode(&std::fs::read(&arg)?, &opts)?;
        if group {
            for (n, face) in models.detector.detect(&image)?.iter().enumerate() {
                let e = models.embedder.embed(&align::align(&image, face))?;
                faces.push((format!("{arg}#{n}"), e));
            }
        } else if let Some(primary) = models.analyse(&image)?.primary {
            faces.push((identity(&arg), primary.embedding));
        } else {
            eprintln!("{arg}: no face");
        }
    }
    let pairs: Vec<(usize, usize, bool)> = (0..faces.len())
        .flat_map(|i| (0..faces.len()).map(move |j| (i, j)))
        .filter(|(i, j)| i != j)
        .map(|(i, j)| (i, j, faces[i].0 == faces[j].0))
        .collect();
    let genuine = pairs.iter().filter(|p| p.2).count();
    println!(
        "{} faces, {genuine} genuine and {} impostor ordered pairs (enrolled, probe)\n",
        faces.len(),
        pairs.len() - genuine
    );
    let cosines = |same: bool| -> Vec<f64> {
        pairs
            .iter()
            .filter(|p| p.2 == same)
            .map(|&(i, j, _)| faces[i].1.cosine(&faces[j].1) as f64)
            .collect()
    };
    println!(
        "cosine: genuine {}, impostor {}\n",
        stats(&cosines(true)),
        stats(&cosines(false))
    );
    let mut closest: Vec<(f32, &str, &str)> = pairs
        .iter()
        .filter(|p| !p.2 && p.0 < p.1)
        .map(|&(i, j, _)| (faces[i].1.cosine(&faces[j].1), &*faces[i].0, &*faces[j].0))
        .collect();
    closest.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (c, a, b) in closest.iter().take(5) {
        println!("closest impostors: {c:.3} {a} {b}");
    }
    println!(
        "| bits kept | of projected | genuine BER mean [min, max] | impostor BER mean [min, max] |"
    );
    println!("|---|---|---|---|");
    for (kept, projected) in [
        (192, 192),
        (511, 511),
        (255, 1023),
        (511, 1023),
        (511, 2047),
    ] {
        let rows = projection(projected, 0x5eed);
        let projections: Vec<Vec<f32>> = faces.iter().map(|(_, e)| project(&rows, e)).collect();
        // The bits each face keeps when it is the enrolled one.
        let selected: Vec<Vec<usize>> =
            projections.iter().map(|p| most_reliable(p, kept)).collect();
        let rate = |same: bool| -> Vec<f64> {
            pairs
                .iter()
                .filter(|p| p.2 == same)
                .map(|&(i, j, _)| ber(&projections[i], &projections[j], &selected[i]))
                .collect()
        };
        println!(
            "| {kept} | {projected} | {} | {} |",
            stats(&rate(true)),
            stats(&rate(false))
        );
    }
    Ok(())
}
