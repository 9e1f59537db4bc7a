//! What the measuring examples share: labelled photo folders and rates with intervals.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub type Error = Box<dyn std::error::Error>;

/// Label names, and `(label index, path)` of every photo.
pub type Labelled = (Vec<String>, Vec<(usize, PathBuf)>);

/// `(label index, path)` of every file under `dir/<label>/`, labels and files in name
/// order, with the label names.
pub fn labelled(dir: &Path) -> Result<Labelled, Error> {
    let mut labels: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    labels.sort();
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(label)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|f| (i, f)));
    }
    if out.is_empty() {
        return Err(format!("{}: no <label>/<photo> files", dir.display()).into());
    }
    let names = labels
        .iter()
        .map(|l| {
            l.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    Ok((names, out))
}

/// Where an occlusion set's `<category>/<photo>` folders are: `DIR/images` if there is
/// one (beside its `labels.csv`), else `DIR`.
pub fn categories_root(dir: &Path) -> PathBuf {
    let images = dir.join("images");
    if images.is_dir() {
        images
    } else {
        dir.to_path_buf()
    }
}

/// Prints occlusion rates by eye distance, from `(eye distance, occluded, called
/// occluded)` of every face found: occluded faces tend to be smaller than clear ones, so a
/// size cue could pass for an occlusion cue.
pub fn by_eye_distance(faces: &[(f32, bool, bool)]) {
    println!("| eye distance (px) | occluded caught | unoccluded called occluded |");
    println!("|---|---|---|");
    for (low, high) in [(0.0, 40.0), (40.0, 60.0), (60.0, 90.0), (90.0, f32::MAX)] {
        let within = |occluded: bool| {
            let of = faces
                .iter()
                .filter(|(e, o, _)| *o == occluded && *e >= low && *e < high);
            (of.clone().filter(|f| f.2).count(), of.count())
        };
        let ((k0, n0), (k1, n1)) = (within(true), within(false));
        let upper = if high == f32::MAX {
            String::new()
        } else {
            format!("{high:.0}")
        };
        println!("| {low:.0}–{upper} | {} | {} |", rate(k0, n0), rate(k1, n1));
    }
}

/// A rate with its 95 % Wilson score interval, in percent.
pub fn rate(k: usize, n: usize) -> String {
    if n == 0 {
        return "–".into();
    }
    let (low, high) = wilson(k, n);
    let p = k as f64 / n as f64;
    // Two decimals of a percent, or four for rates under 0.1 %.
    let d = if p < 1e-3 { 4 } else { 2 };
    format!(
        "{:.d$} % ({k} / {n}; {:.d$}–{:.d$})",
        100.0 * p,
        100.0 * low,
        100.0 * high
    )
}

/// The 95 % Wilson score interval of `k` successes in `n` trials.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    let (k, n, z) = (k as f64, n as f64, 1.96f64);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Decodes a photo file as the agent would, with its EXIF orientation applied.
pub fn decode_file(path: &Path) -> Result<image::RgbImage, Error> {
    use recognize_agent::vision::decode;
    decode::decode(
        &std::fs::read(path)?,
        &decode::DecodeOptions::file(50_000_000),
    )
    .map_err(|e| format!("{}: {e}", path.display()).into())
}
