//! Learns the `faceIsOccluded` classifier from labelled real photos and writes its weights
//! to `src/vision/occlusion/classifier/weights.rs`; prints its cross-validated rates as
//! Markdown (docs/biometrics.md, *Filters on real photos*).
//!
//! `occlusion_train --portraits DIR... --occlusion DIR... [--folds K] [--target F] [--write]`
//!
//! - Portrait sets (`DIR/<identity>/<photo>`) give unoccluded faces, and each of them a
//!   copy with drawn dark glasses or an eye bar (categories `drawn_*`); occlusion sets
//!   (`DIR/<category>/<photo>` or `DIR/images/…`, `clear` for unoccluded, every other
//!   category occluded) give both. A `labels.csv` beside an occlusion set's images may name
//!   a photo's `identity` (column 3), so one person's photos stay in one fold.
//! - The model: logistic regression (L2, classes weighted equally, fitted by L-BFGS) on
//!   the features of `occlusion::features`, standardised.
//! - Its operating point: the score above which at most `--target` (default 1 %) of the
//!   unoccluded faces of every set are called occluded.
//! - Nested cross-validation by person: for each of `K` folds, the regularisation and
//!   the operating point are chosen by an inner cross-validation on the other folds, the
//!   model fitted on them, and the fold's photos classified. The rates printed are those
//!   of the held-out folds only.
//! - `--write` then fits the model on every photo, with its regularisation and operating
//!   point chosen the same way, and writes the weights (the operating point folded into
//!   the bias, so 0 is the decision boundary).
//!
//! Photos and features stay in memory; only the weights are written.

mod support;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use image::RgbImage;
use recognize_agent::vision::occlusion::{self, classifier::FEATURES};
use recognize_agent::vision::{self, Models, align, default_models_dir, default_precision};
use support::{Error, rate};

/// Regularisation strengths tried.
const LAMBDAS: [f64; 4] = [8.0, 32.0, 128.0, 512.0];

/// Where the weights go.
const WEIGHTS: &str = "src/vision/occlusion/classifier/weights.rs";

struct Sample {
    x: Box<[f32; FEATURES]>,
    occluded: bool,
    /// Index of the set the photo came from (each set's clear faces are held to the
    /// false-alarm target).
    set: usize,
    category: String,
    /// Person (or photo) the fold assignment keeps together.
    group: usize,
    eyes: f32,
}

fn main() -> Result<(), Error> {
    let (mut sets, mut folds, mut target, mut write) = (Vec::new(), 5usize, 0.01f64, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--portraits" => {
                sets.push((PathBuf::from(args.next().ok_or("--portraits DIR")?), false))
            }
            "--occlusion" => {
                sets.push((PathBuf::from(args.next().ok_or("--occlusion DIR")?), true))
            }
            "--folds" => folds = args.next().ok_or("--folds K")?.parse()?,
            "--target" => target = args.next().ok_or("--target F")?.parse()?,
            "--write" => write = true,
            other => return Err(format!("unexpected argument {other}").into()),
        }
    }
    if !sets.iter().any(|(_, o)| *o) || folds < 2 {
        return Err("usage: occlusion_train --portraits DIR... --occlusion DIR... [--folds K] [--target F] [--write]".into());
    }
    let models = Models::load(&default_models_dir(), default_precision()?)?;
    let mut samples = Vec::new();
    let mut groups = HashMap::new();
    let mut missing: HashMap<(usize, String), (usize, usize)> = HashMap::new();
    for (set, (dir, occlusion)) in sets.iter().enumerate() {
        load(
            &models,
            set,
            dir,
            *occlusion,
            &mut groups,
            &mut samples,
            &mut missing,
        )?;
    }
    eprintln!("{} faces", samples.len());
    let fold_of = |s: &Sample| s.group % folds;

    // Outer cross-validation: every photo scored by a model that never saw its person.
    let mut outer = vec![0f64; samples.len()];
    let mut chosen = Vec::new();
    for k in 0..folds {
        let train: Vec<&Sample> = samples.iter().filter(|s| fold_of(s) != k).collect();
        let (lambda, cut) = choose(&train, folds, target, sets.len());
        let model = fit(&train, lambda);
        for (i, s) in samples.iter().enumerate() {
            if fold_of(s) == k {
                outer[i] = model.score(&s.x) - cut;
            }
        }
        chosen.push(format!("λ {lambda}, cut {cut:.2}"));
        eprintln!("fold {k}: {}", chosen[k]);
    }
    report(&sets, &samples, &outer, &missing, folds, target, &chosen);

    if write {
        let (lambda, cut) = choose(
            &samples.iter().collect::<Vec<_>>(),
            folds,
            target,
            sets.len(),
        );
        let model = fit(&samples.iter().collect::<Vec<_>>(), lambda);
        write_weights(&model, cut, (lambda, target), &sets, samples.len())?;
        eprintln!("wrote {WEIGHTS} (λ {lambda}, cut {cut:.3})");
    }
    Ok(())
}

/// Analyses every photo of one set; photos where no face is found are counted per
/// category in `missing` (found, not found).
fn load(
    models: &Models,
    set: usize,
    dir: &Path,
    occlusion: bool,
    groups: &mut HashMap<String, usize>,
    samples: &mut Vec<Sample>,
    missing: &mut HashMap<(usize, String), (usize, usize)>,
) -> Result<(), Error> {
    let root = if occlusion {
        support::categories_root(dir)
    } else {
        dir.to_path_buf()
    };
    let identities = identities(dir);
    let (labels, files) = support::labelled(&root)?;
    for (n, (label, path)) in files.into_iter().enumerate() {
        let category = if occlusion {
            labels[label].clone()
        } else {
            "portrait".into()
        };
        let relative = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let person = match (occlusion, identities.get(&relative)) {
            (false, _) => format!("{set}/{}", labels[label]),
            (true, Some(id)) => format!("{set}/{id}"),
            (true, None) => format!("{set}/{relative}"),
        };
        let next = groups.len();
        // Groups are numbered in a scrambled order so folds mix sources and categories.
        let group = *groups
            .entry(person)
            .or_insert(next.wrapping_mul(2_654_435_761) >> 7);
        let image = support::decode_file(&path)?;
        let analysis = models.analyse(&image)?;
        let count = missing.entry((set, category.clone())).or_default();
        let Some(p) = analysis.primary else {
            count.1 += 1;
            continue;
        };
        count.0 += 1;
        let aligned = align::align(&image, &p.face);
        let run = models.embedder.run(&aligned)?;
        let embedding = models.embedder.embedding(&aligned, &run)?;
        let eyes = p.face.interocular();
        samples.push(Sample {
            x: occlusion::features(&aligned, &embedding, &run.bands),
            occluded: occlusion && category != "clear",
            set,
            category,
            group,
            eyes,
        });
        if !occlusion {
            // Each portrait also gives a drawn occluder, so that painted glasses and bars
            // (the tests' fixtures) are learned as well as photographed ones.
            let (covered, kind) = eyewear(&aligned, samples.len() as u64);
            let run = models.embedder.run(&covered)?;
            let embedding = models.embedder.embedding(&covered, &run)?;
            samples.push(Sample {
                x: occlusion::features(&covered, &embedding, &run.bands),
                occluded: true,
                set,
                category: kind.into(),
                group,
                eyes,
            });
        }
        if n % 200 == 199 {
            eprintln!("{}: analysed {}", dir.display(), n + 1);
        }
    }
    Ok(())
}

/// A copy of an aligned face with drawn dark glasses (two thirds of the time) or an eye
/// bar, their size, shade and reflection varied by `seed`; and its category name.
fn eyewear(aligned: &RgbImage, seed: u64) -> (RgbImage, &'static str) {
    let mut state = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let mut uniform = |low: f32, high: f32| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        low + (high - low) * ((state >> 40) as f32 / (1u64 << 24) as f32)
    };
    let mut out = aligned.clone();
    let [eye_r, eye_l, ..] = align::TEMPLATE;
    let d = eye_r.distance(eye_l);
    let shade = uniform(5.0, 50.0);
    let tint = [uniform(-6.0, 6.0), uniform(-6.0, 6.0), uniform(0.0, 10.0)];
    let colour = image::Rgb(tint.map(|t| (shade + t).clamp(0.0, 255.0) as u8));
    let scale = uniform(0.85, 1.2);
    let bar = seed % 3 == 2;
    let reflection = uniform(0.0, 1.0) < 0.5;
    for (x, y, pixel) in out.enumerate_pixels_mut() {
        let (x, y) = (x as f32, y as f32);
        let covered = if bar {
            x >= eye_r.x - 0.5 * d * scale
                && x <= eye_l.x + 0.5 * d * scale
                && (y - eye_r.y).abs() <= 0.25 * d * scale
        } else {
            let lens = |c: vision::geometry::Point| {
                ((x - c.x) / (0.42 * d * scale)).powi(2) + ((y - c.y) / (0.31 * d * scale)).powi(2)
                    <= 1.0
            };
            let bridge = x > eye_r.x && x < eye_l.x && (y - (eye_r.y - 0.1 * d)).abs() <= 0.05 * d;
            lens(eye_r) || lens(eye_l) || bridge
        };
        if covered {
            *pixel = colour;
            let glint = reflection
                && !bar
                && (x - (eye_r.x - 0.15 * d)).abs() < 0.1 * d
                && (y - (eye_r.y - 0.15 * d)).abs() < 0.05 * d;
            if glint {
                *pixel = image::Rgb(colour.0.map(|c| c.saturating_add(40)));
            }
        }
    }
    (
        out,
        if bar {
            "drawn_eye_bar"
        } else {
            "drawn_sunglasses"
        },
    )
}

/// `file → identity` from an occlusion set's `labels.csv`, where it names one.
fn identities(dir: &Path) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("labels.csv")) else {
        return HashMap::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split(',');
            let (file, _, identity) = (fields.next()?, fields.next()?, fields.next()?);
            (!identity.is_empty()).then(|| (file.to_string(), identity.to_string()))
        })
        .collect()
}

/// Chooses the regularisation (the most occlusions caught at the target, in an inner
/// cross-validation over `train`) and the operating point (from the inner held-out scores).
fn choose(train: &[&Sample], folds: usize, target: f64, sets: usize) -> (f64, f64) {
    let inner_fold = |s: &Sample| (s.group / folds) % folds;
    let mut best = (f64::MIN, LAMBDAS[0], 0.0);
    for lambda in LAMBDAS {
        let mut scores = vec![0f64; train.len()];
        for k in 0..folds {
            let part: Vec<&Sample> = train
                .iter()
                .copied()
                .filter(|s| inner_fold(s) != k)
                .collect();
            let model = fit(&part, lambda);
            for (i, s) in train.iter().enumerate() {
                if inner_fold(s) == k {
                    scores[i] = model.score(&s.x);
                }
            }
        }
        let cut = cut_at(train, &scores, target, sets);
        let caught = train
            .iter()
            .zip(&scores)
            .filter(|(s, x)| s.occluded && **x > cut)
            .count() as f64
            / train.iter().filter(|s| s.occluded).count().max(1) as f64;
        if caught > best.0 {
            best = (caught, lambda, cut);
        }
    }
    (best.1, best.2)
}

/// The lowest score above which at most `target` of every set's unoccluded faces lie.
fn cut_at(samples: &[&Sample], scores: &[f64], target: f64, sets: usize) -> f64 {
    (0..sets)
        .filter_map(|set| {
            let mut clear: Vec<f64> = samples
                .iter()
                .zip(scores)
                .filter(|(s, _)| s.set == set && !s.occluded)
                .map(|(_, x)| *x)
                .collect();
            if clear.is_empty() {
                return None;
            }
            clear.sort_by(|a, b| b.total_cmp(a));
            let allowed = (target * clear.len() as f64).floor() as usize;
            Some(clear.get(allowed).copied().unwrap_or(f64::MIN))
        })
        .fold(f64::MIN, f64::max)
}

/// A fitted model on standardised features.
struct Model {
    mean: Vec<f64>,
    sd: Vec<f64>,
    /// Bias, then one weight per feature.
    w: Vec<f64>,
}

impl Model {
    fn standardise(&self, x: &[f32; FEATURES]) -> Vec<f64> {
        let mut z = Vec::with_capacity(FEATURES + 1);
        z.push(1.0);
        z.extend((0..FEATURES).map(|j| (x[j] as f64 - self.mean[j]) / self.sd[j]));
        z
    }

    fn score(&self, x: &[f32; FEATURES]) -> f64 {
        self.standardise(x)
            .iter()
            .zip(&self.w)
            .map(|(a, b)| a * b)
            .sum()
    }
}

/// Weighted L2-regularised logistic regression, by L-BFGS (the features outnumber what
/// Newton's method could afford).
fn fit(samples: &[&Sample], lambda: f64) -> Model {
    let n = samples.len() as f64;
    let mut mean = vec![0.0; FEATURES];
    let mut sd = vec![0.0; FEATURES];
    for s in samples {
        for (m, x) in mean.iter_mut().zip(s.x.iter()) {
            *m += *x as f64 / n;
        }
    }
    for s in samples {
        for ((v, m), x) in sd.iter_mut().zip(&mean).zip(s.x.iter()) {
            *v += (*x as f64 - m).powi(2) / n;
        }
    }
    for v in &mut sd {
        *v = v.sqrt().max(1e-6);
    }
    let mut model = Model {
        mean,
        sd,
        w: vec![0.0; FEATURES + 1],
    };
    let z: Vec<Vec<f64>> = samples.iter().map(|s| model.standardise(&s.x)).collect();
    let positives = samples.iter().filter(|s| s.occluded).count() as f64;
    let weight =
        |occluded: bool| n / 2.0 / if occluded { positives } else { n - positives }.max(1.0);
    // Loss and gradient, per sample on average.
    let loss = |w: &[f64], grad: &mut [f64]| -> f64 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut total = 0.0;
        for (s, zi) in samples.iter().zip(&z) {
            let t: f64 = zi.iter().zip(w).map(|(a, b)| a * b).sum();
            let y = if s.occluded { 1.0 } else { -1.0 };
            let c = weight(s.occluded);
            // log(1 + e^(−y t)), computed stably.
            let m = -y * t;
            total += c * (m.max(0.0) + (-m.abs()).exp().ln_1p());
            let r = -c * y / (1.0 + (y * t).exp());
            for (g, a) in grad.iter_mut().zip(zi) {
                *g += r * a;
            }
        }
        for a in 1..w.len() {
            total += 0.5 * lambda * w[a] * w[a];
            grad[a] += lambda * w[a];
        }
        grad.iter_mut().for_each(|g| *g /= n);
        total / n
    };
    lbfgs(&mut model.w, loss);
    model
}

/// Minimises a smooth convex function from `w` by L-BFGS with a backtracking line search.
fn lbfgs(w: &mut [f64], f: impl Fn(&[f64], &mut [f64]) -> f64) {
    const MEMORY: usize = 10;
    let d = w.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut grad = vec![0.0; d];
    let mut value = f(w, &mut grad);
    let mut history: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new();
    for _ in 0..500 {
        // Two-loop recursion: the direction from the curvature pairs kept.
        let mut q = grad.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(q, y)| *q -= a * y);
            alphas.push(a);
        }
        if let Some((s, y, _)) = history.last() {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|q| *q *= gamma);
        } else {
            let norm = dot(&grad, &grad).sqrt().max(1e-12);
            q.iter_mut().for_each(|q| *q /= norm);
        }
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(q, s)| *q += (a - b) * s);
        }
        let slope = -dot(&grad, &q);
        if slope >= 0.0 {
            history.clear();
            continue;
        }
        let mut step = 1.0;
        let mut next = vec![0.0; d];
        let mut next_grad = vec![0.0; d];
        let next_value = loop {
            next.iter_mut()
                .zip(w.iter())
                .zip(&q)
                .for_each(|((n, w), q)| *n = w - step * q);
            let v = f(&next, &mut next_grad);
            if v <= value + 1e-4 * step * slope {
                break Some(v);
            }
            if step < 1e-10 {
                break None;
            }
            step /= 2.0;
        };
        // No step decreases the loss: at the minimum, to rounding.
        let Some(next_value) = next_value else {
            break;
        };
        let s: Vec<f64> = next.iter().zip(w.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = next_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if history.len() == MEMORY {
                history.remove(0);
            }
            history.push((s, y, 1.0 / sy));
        }
        w.copy_from_slice(&next);
        grad = next_grad;
        let done = (value - next_value).abs() < 1e-9 * value.abs().max(1.0);
        value = next_value;
        if done || dot(&grad, &grad).sqrt() < 1e-6 {
            break;
        }
    }
}

fn report(
    sets: &[(PathBuf, bool)],
    samples: &[Sample],
    scores: &[f64],
    missing: &HashMap<(usize, String), (usize, usize)>,
    folds: usize,
    target: f64,
    chosen: &[String],
) {
    println!(
        "`faceIsOccluded`, nested {folds}-fold cross-validation by person (each photo \
         classified by a model that never saw its person; operating point: at most {} % \
         of each set's unoccluded faces called occluded, chosen on the training folds): {}.\n",
        100.0 * target,
        chosen.join("; ")
    );
    println!("| set | category | faces found | called occluded (95 % CI) | no face found |");
    println!("|---|---|---|---|---|");
    for (set, (dir, _)) in sets.iter().enumerate() {
        let mut categories: Vec<&str> = samples
            .iter()
            .filter(|s| s.set == set)
            .map(|s| s.category.as_str())
            .collect();
        categories.sort();
        categories.dedup();
        for category in categories {
            let of: Vec<usize> = (0..samples.len())
                .filter(|&i| samples[i].set == set && samples[i].category == category)
                .collect();
            let called = of.iter().filter(|&&i| scores[i] > 0.0).count();
            let (found, lost) = missing
                .get(&(set, category.to_string()))
                .copied()
                .unwrap_or_default();
            println!(
                "| `{}` | `{category}` | {} | {} | {} |",
                dir.file_name().unwrap_or_default().to_string_lossy(),
                of.len(),
                rate(called, of.len()),
                rate(lost, found + lost)
            );
        }
    }
    println!("\nBy eye distance, all sets:\n");
    let faces: Vec<(f32, bool, bool)> = samples
        .iter()
        .zip(scores)
        .map(|(s, x)| (s.eyes, s.occluded, *x > 0.0))
        .collect();
    support::by_eye_distance(&faces);
}

fn write_weights(
    model: &Model,
    cut: f64,
    (lambda, target): (f64, f64),
    sets: &[(PathBuf, bool)],
    n: usize,
) -> Result<(), Error> {
    // Fold standardisation and operating point into raw-feature weights and a bias.
    let mut bias = model.w[0] - cut;
    let weights: Vec<f64> = (0..FEATURES)
        .map(|j| {
            let w = model.w[j + 1] / model.sd[j];
            bias -= w * model.mean[j];
            w
        })
        .collect();
    let names: Vec<String> = sets
        .iter()
        .map(|(d, _)| format!("`{}`", d.file_name().unwrap_or_default().to_string_lossy()))
        .collect();
    let mut out = String::new();
    writeln!(
        out,
        "//! Generated by `scripts/occlusion-train --target {target}` from {n} faces of {}\n\
         //! (λ {lambda}). Do not edit.",
        names.join(", ")
    )?;
    writeln!(
        out,
        "\n#[rustfmt::skip]\npub(super) const BIAS: f32 = {:e};\n",
        bias as f32
    )?;
    writeln!(
        out,
        "#[rustfmt::skip]\npub(super) const WEIGHTS: [f32; super::FEATURES] = ["
    )?;
    for chunk in weights.chunks(6) {
        let line: Vec<String> = chunk.iter().map(|w| format!("{:e},", *w as f32)).collect();
        writeln!(out, "    {}", line.join(" "))?;
    }
    writeln!(out, "];")?;
    std::fs::write(WEIGHTS, out)?;
    Ok(())
}
