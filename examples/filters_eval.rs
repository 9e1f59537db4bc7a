//! The six filters on labelled real photos, printed as Markdown (docs/biometrics.md,
//! *Filters on real photos*).
//!
//! `filters_eval [--portraits DIR]... [--occlusion DIR]... [--list]`
//!
//! - A portrait set, `DIR/<identity>/<photo>`: every photo is a usable face of one person,
//!   so every filter should pass it in every scenario.
//! - An occlusion set, `DIR/<category>/<photo>` (or `DIR/images/<category>/<photo>`): the
//!   category `clear` holds unoccluded faces, every other category occluded ones, which
//!   should trigger `faceIsOccluded` and nothing else. Faces the detector misses are
//!   counted apart (`faceMissing`), and the rates are also given by eye distance, because
//!   occluded faces tend to be smaller than clear ones.
//!
//! `--list` names on stderr every photo refused where it should pass, and every occluded
//! photo let through. Photos are read where they are; nothing is written.

mod support;

use std::path::{Path, PathBuf};

use recognize_agent::contract::{Filter, FilterStatus, Filters, Scenario};
use recognize_agent::vision::detect::Face;
use recognize_agent::vision::filters::{self, Policy};
use recognize_agent::vision::{Models, default_models_dir, default_precision};
use support::{Error, rate};

/// One photo's outcome in every scenario.
struct Photo {
    path: PathBuf,
    category: String,
    occluded: bool,
    /// Eye distance of the enrolled face, if one was found.
    eyes: Option<f32>,
    /// Visible size of the largest other face relative to the enrolled one (0 if alone).
    other: f32,
    filters: [Filters; 3],
}

impl Photo {
    fn triggered(&self, s: usize, filter: Filter) -> bool {
        self.filters[s].get(filter) == FilterStatus::Triggered
    }

    fn refused(&self, s: usize) -> bool {
        self.filters[s].any_triggered()
    }

    /// The filters that should trigger on this photo.
    fn expected(&self, filter: Filter) -> bool {
        self.occluded && filter == Filter::FaceIsOccluded
    }
}

fn main() -> Result<(), Error> {
    let (mut portraits, mut occlusion, mut list) = (Vec::new(), Vec::new(), false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--portraits" => portraits.push(PathBuf::from(args.next().ok_or("--portraits DIR")?)),
            "--occlusion" => occlusion.push(PathBuf::from(args.next().ok_or("--occlusion DIR")?)),
            "--list" => list = true,
            other => return Err(format!("unexpected argument {other}").into()),
        }
    }
    if portraits.is_empty() && occlusion.is_empty() {
        return Err(
            "usage: filters_eval [--portraits DIR]... [--occlusion DIR]... [--list]".into(),
        );
    }
    let models = Models::load(&default_models_dir(), default_precision()?)?;
    for dir in &portraits {
        let photos = analyse(&models, dir, false)?;
        report(dir, &photos, false, list);
    }
    for dir in &occlusion {
        let photos = analyse(&models, &support::categories_root(dir), true)?;
        report(dir, &photos, true, list);
    }
    Ok(())
}

/// Runs the pipeline and every scenario's filters on every photo under `dir`.
fn analyse(models: &Models, dir: &Path, by_category: bool) -> Result<Vec<Photo>, Error> {
    let (labels, files) = support::labelled(dir)?;
    let policies = Scenario::ALL.map(Policy::for_scenario);
    let mut photos = Vec::with_capacity(files.len());
    for (n, (label, path)) in files.into_iter().enumerate() {
        let image = support::decode_file(&path)?;
        let analysis = models.analyse(&image)?;
        let category = if by_category {
            labels[label].clone()
        } else {
            "portrait".into()
        };
        photos.push(Photo {
            occluded: by_category && category != "clear",
            category,
            eyes: analysis.primary.as_ref().map(|p| p.face.interocular()),
            other: analysis.primary.as_ref().map_or(0.0, |p| {
                let visible = |f: &Face| f.visible_size(image.width(), image.height());
                analysis
                    .faces
                    .iter()
                    .filter(|f| **f != p.face)
                    .map(|f| visible(f) / visible(&p.face))
                    .fold(0.0, f32::max)
            }),
            filters: policies.map(|p| filters::evaluate(&analysis, &p)),
            path,
        });
        if n % 200 == 199 {
            eprintln!("analysed {}", n + 1);
        }
    }
    Ok(photos)
}

fn report(dir: &Path, photos: &[Photo], occlusion: bool, list: bool) {
    let mut categories: Vec<&str> = photos.iter().map(|p| p.category.as_str()).collect();
    categories.dedup();
    println!("### `{}`: {} photos\n", dir.display(), photos.len());
    let clear: Vec<&Photo> = photos.iter().filter(|p| !p.occluded).collect();
    println!(
        "Failure to enrol of the photos that should pass ({}), by scenario:\n",
        clear.len()
    );
    println!(
        "| scenario | refused (95 % CI) | {} |",
        Filter::ALL.map(|f| format!("`{}`", f.name())).join(" | ")
    );
    println!("|---|---|{}", "---|".repeat(6));
    for (s, scenario) in Scenario::ALL.iter().enumerate() {
        let refused = clear.iter().filter(|p| p.refused(s)).count();
        let by_filter = Filter::ALL.map(|filter| {
            clear
                .iter()
                .filter(|p| p.triggered(s, filter))
                .count()
                .to_string()
        });
        println!(
            "| `{}` | {} | {} |",
            scenario.as_str(),
            rate(refused, clear.len()),
            by_filter.join(" | ")
        );
    }
    let selfie = Scenario::Selfie.index();
    println!("\nPer filter, `SELFIE` (expected to trigger / not):\n");
    println!("| filter | triggered when expected | missed | false alarms | correct passes |");
    println!("|---|---|---|---|---|");
    for filter in Filter::ALL {
        let name = filter.name();
        let mut table = [0usize; 4];
        for p in photos {
            let (expected, got) = (p.expected(filter), p.triggered(selfie, filter));
            table[usize::from(!expected) * 2 + usize::from(expected != got)] += 1;
        }
        println!(
            "| `{name}` | {} | {} | {} | {} |",
            table[0], table[1], table[3], table[2]
        );
    }
    others_report(&clear);
    if occlusion {
        occlusion_report(photos, &categories);
    }
    println!();
    if list {
        for p in photos {
            let wrong = Filter::ALL
                .into_iter()
                .filter(|f| p.triggered(selfie, *f) != p.expected(*f))
                .map(Filter::name)
                .collect::<Vec<_>>();
            if !wrong.is_empty() {
                let eyes = p.eyes.map_or("-".into(), |e| format!("{e:.0}"));
                eprintln!("{} eyes {eyes}: {}", p.path.display(), wrong.join(" "));
            }
        }
    }
}

/// `faceIsOccluded` by category and by eye distance, in `SELFIE`.
fn occlusion_report(photos: &[Photo], categories: &[&str]) {
    let s = Scenario::Selfie.index();
    println!("\n`faceIsOccluded` by category, `SELFIE`:\n");
    println!("| category | photos | `faceIsOccluded` (95 % CI) | no face found (`faceMissing`) |");
    println!("|---|---|---|---|");
    for category in categories {
        let of: Vec<&Photo> = photos.iter().filter(|p| p.category == *category).collect();
        let occluded = of
            .iter()
            .filter(|p| p.triggered(s, Filter::FaceIsOccluded))
            .count();
        let missing = of.iter().filter(|p| p.eyes.is_none()).count();
        println!(
            "| `{category}` | {} | {} | {} |",
            of.len(),
            rate(occluded, of.len()),
            rate(missing, of.len())
        );
    }
    println!("\nBy eye distance of the found face:\n");
    let faces: Vec<(f32, bool, bool)> = photos
        .iter()
        .filter_map(|p| Some((p.eyes?, p.occluded, p.triggered(s, Filter::FaceIsOccluded))))
        .collect();
    support::by_eye_distance(&faces);
}

/// How large the largest other face looks (its visible size), relative to the enrolled one, on photos that
/// should pass: what the `faceMultiple` ratio must stay above.
fn others_report(photos: &[&Photo]) {
    let mut ratios: Vec<f32> = photos
        .iter()
        .map(|p| p.other)
        .filter(|r| *r > 0.0)
        .collect();
    ratios.sort_by(f32::total_cmp);
    println!(
        "\nOther faces found beside the enrolled one: on {} photos; their size relative to it:\n",
        ratios.len()
    );
    println!("| at least | photos |\n|---|---|");
    for r in [0.25, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] {
        let n = ratios.iter().filter(|x| **x >= r).count();
        println!("| {r:.2} | {n} |");
    }
}
