//! Recognition accuracy of account recovery on a labelled folder of photos,
//! `<identity>/<photo>`, printed as Markdown (docs/biometrics.md, *Accuracy*).
//!
//! `accuracy DIR [--fmr F] [--folds K] [--worst N] [--single]`: every photo is decoded and analysed once. Failure
//! to enrol is the share of photos a scenario's filters refuse (or where no face is
//! found). Every photo with a face is then enrolled through the agent's issuer (rotation,
//! sealing, signed states), its server state opened with the backend's key, and every
//! other photo protected as a device would with the client state's seed; each unordered
//! pair (earlier photo enrolled, later one the probe) is scored by the backend's match.
//! The plain cosine of the two embeddings, the model's ceiling, is printed beside it.
//! Thresholds for target false-match rates are also chosen by `K`-fold cross-validation
//! over identities (each fold's threshold from the impostor pairs of the other folds'
//! people, its error rates on its own people's pairs), so no figure is read off the very
//! pairs that chose it. `--single` embeds each face once, without its mirror image (the
//! agent's default averages both); the occlusion classifier, trained on averaged
//! embeddings, then reads other features, so the failure-to-enrol rows are not the agent's. `--worst N` lists on stderr the N impostor pairs of highest score
//! and the N genuine pairs of lowest score (people and photos), to look for mislabelled
//! photos or wrong faces. Photos and embeddings stay in memory; nothing is written.

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use recognize_agent::backend::matching;
use recognize_agent::clock::{Clock, SystemClock};
use recognize_agent::contract::Scenario;
use recognize_agent::protect::issue::Issuer;
use recognize_agent::protect::keys::KeyFile;
use recognize_agent::protect::rotation::Rotation;
use recognize_agent::protect::seal::SealingKey;
use recognize_agent::protect::states::{self, ClientType, ServerState};
use recognize_agent::recovery;
use recognize_agent::vision::embed::Embedding;
use recognize_agent::vision::filters::{self, Policy};
use recognize_agent::vision::{Models, default_models_dir, default_precision};

mod support;

use support::{Error, rate};

/// The false-match rates reported.
const TARGETS: [f64; 4] = [1e-2, 1e-3, 1e-4, 1e-5];

/// One photo: its person, and its face's embedding if one was found.
struct Photo {
    identity: usize,
    embedding: Option<Embedding>,
}

/// A scored pair: protected score, plain cosine, same person, the fold of each photo's
/// person, and the photos' indices.
struct Pair {
    protected: f32,
    plain: f32,
    genuine: bool,
    folds: (usize, usize),
    photos: (usize, usize),
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = None;
    let (mut fmr, mut folds, mut worst) = (matching::DEFAULT_FMR, 5usize, 0usize);
    let mut single = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--fmr" => fmr = it.next().ok_or("--fmr needs a value")?.parse()?,
            "--folds" => folds = it.next().ok_or("--folds needs a value")?.parse()?,
            "--worst" => worst = it.next().ok_or("--worst needs a value")?.parse()?,
            "--single" => single = true,
            other if dir.is_none() => dir = Some(PathBuf::from(other)),
            other => return Err(format!("unexpected argument {other}").into()),
        }
    }
    let dir = dir.ok_or("usage: accuracy DIR [--fmr F] [--folds K] [--worst N] [--single]")?;
    let configured = matching::for_fmr(fmr)?;
    let files = support::labelled(&dir)?.1;
    let people = files.iter().map(|(i, _)| *i).max().map_or(0, |m| m + 1);
    eprintln!("{} photos of {people} people", files.len());

    let mut models = Models::load(&default_models_dir(), default_precision()?)?;
    models.embedder.mirror = !single;
    let policies = Scenario::ALL.map(Policy::for_scenario);
    let mut refused = [0usize; 3];
    let mut photos = Vec::new();
    for (n, (identity, path)) in files.iter().enumerate() {
        let image = support::decode_file(path)?;
        let analysis = models.analyse(&image)?;
        for (s, policy) in policies.iter().enumerate() {
            let triggered = filters::evaluate(&analysis, policy).any_triggered();
            refused[s] += usize::from(triggered || analysis.primary.is_none());
        }
        photos.push(Photo {
            identity: *identity,
            embedding: analysis.primary.map(|p| p.embedding),
        });
        if n % 100 == 99 {
            eprintln!("analysed {}", n + 1);
        }
    }

    let pairs = score_pairs(&photos, folds)?;
    let name = |i: usize| {
        let path = &files[i].1;
        path.strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    for genuine in [false, true] {
        let mut worst_pairs: Vec<&Pair> = pairs.iter().filter(|p| p.genuine == genuine).collect();
        // Impostors from the highest score down, genuine pairs from the lowest up.
        worst_pairs.sort_by(|a, b| match genuine {
            false => b.protected.total_cmp(&a.protected),
            true => a.protected.total_cmp(&b.protected),
        });
        let kind = if genuine { "genuine" } else { "impostor" };
        for p in worst_pairs.iter().take(worst) {
            let (a, b) = p.photos;
            eprintln!("{kind} {:.3} {} {}", p.protected, name(a), name(b));
        }
    }
    print_report(
        &dir, &photos, people, &refused, &pairs, fmr, configured, folds,
    );
    Ok(())
}

/// Every unordered pair of photos with a face: the earlier enrolled through the issuer and
/// the backend's key, the later protected as a device would, scored by the backend.
fn score_pairs(photos: &[Photo], folds: usize) -> Result<Vec<Pair>, Error> {
    let sealing = SealingKey::from_secret(&states::random_bytes().map_err(|e| e.to_string())?);
    let issuer = Issuer::new(KeyFile::ephemeral()?, sealing.public().clone());
    let mut rng = ChaCha20Rng::from_seed(states::random_bytes().map_err(|e| e.to_string())?);
    let faces: Vec<(usize, usize, &Embedding)> = photos
        .iter()
        .enumerate()
        .filter_map(|(n, p)| p.embedding.as_ref().map(|e| (n, p.identity, e)))
        .collect();
    let mut pairs = Vec::with_capacity(faces.len() * faces.len() / 2);
    for (i, (n, identity, enrolled)) in faces.iter().enumerate() {
        let issued = issuer.issue(
            &enrolled.vector,
            Scenario::TrustedSource,
            ClientType::Backup,
            SystemClock.now(),
            &mut rng,
        )?;
        // The backend's side: the sealed template, opened.
        let server = states::decode::<ServerState>(&issued.server_state)?.state;
        let template = server.open_template(&sealing)?;
        // The device's side: the client state's rotation (drawn once for all probes, as
        // `recovery::probe` draws it for one).
        let client = recovery::client_state(&issued.client_state)?;
        let rotation = Rotation::from_seed(&client.seed);
        for (m, other, probe) in &faces[i + 1..] {
            let protected = matching::score(&template, &rotation.protect(&probe.vector));
            pairs.push(Pair {
                protected,
                plain: enrolled.cosine(probe),
                genuine: identity == other,
                folds: (identity % folds, other % folds),
                photos: (*n, *m),
            });
        }
        if i % 100 == 99 {
            eprintln!("enrolled and matched {}", i + 1);
        }
    }
    Ok(pairs)
}

/// The lowest threshold whose false-match rate on `impostors` (sorted, descending) is at
/// most `fmr`: just above the score of the impostor pair that would exceed it.
fn threshold_at(impostors: &[f32], fmr: f64) -> f32 {
    let allowed = (fmr * impostors.len() as f64).floor() as usize;
    match impostors.get(allowed) {
        Some(score) => next_up(*score),
        None => f32::MIN,
    }
}

fn next_up(x: f32) -> f32 {
    f32::from_bits(if x >= 0.0 {
        x.to_bits() + 1
    } else {
        x.to_bits() - 1
    })
}

/// Errors among `scores` at `threshold`: (genuine refused, genuine, impostors accepted,
/// impostors).
fn errors<'a>(pairs: impl Iterator<Item = (&'a Pair, f32)>, threshold: f32) -> [usize; 4] {
    let mut e = [0; 4];
    for (pair, score) in pairs {
        let matched = score >= threshold;
        if pair.genuine {
            e[0] += usize::from(!matched);
            e[1] += 1;
        } else {
            e[2] += usize::from(matched);
            e[3] += 1;
        }
    }
    e
}

fn sorted_impostors(pairs: &[Pair], score: impl Fn(&Pair) -> f32) -> Vec<f32> {
    let mut s: Vec<f32> = pairs.iter().filter(|p| !p.genuine).map(score).collect();
    s.sort_by(|a, b| b.total_cmp(a));
    s
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    dir: &Path,
    photos: &[Photo],
    people: usize,
    refused: &[usize; 3],
    pairs: &[Pair],
    fmr: f64,
    configured: f32,
    folds: usize,
) {
    let n = photos.len();
    let no_face = photos.iter().filter(|p| p.embedding.is_none()).count();
    let genuine = pairs.iter().filter(|p| p.genuine).count();
    println!(
        "Set: `{}`, {n} photos of {people} people; {} with a face; {genuine} genuine and {} \
         impostor pairs.\n",
        dir.display(),
        n - no_face,
        pairs.len() - genuine
    );
    println!("| failure to enrol | rate (95 % CI) |\n|---|---|");
    println!("| no face found | {} |", rate(no_face, n));
    for (s, scenario) in Scenario::ALL.iter().enumerate() {
        println!(
            "| `{}` (filters or no face) | {} |",
            scenario.as_str(),
            rate(refused[s], n)
        );
    }
    let protected = |p: &Pair| p.protected;
    let plain = |p: &Pair| p.plain;
    let e = errors(pairs.iter().map(|p| (p, p.protected)), configured);
    println!(
        "\nAt the configured threshold {configured:.4} (target FMR {fmr:e}): FNMR {}, FMR {}.\n",
        rate(e[0], e[1]),
        rate(e[2], e[3])
    );
    println!(
        "| target FMR | threshold (all pairs) | FNMR, protected path | FNMR, plain cosine (ceiling) | \
         cross-validated ({folds} folds by person): thresholds | FNMR | FMR |\n|---|---|---|---|---|---|---|"
    );
    let (imp_protected, imp_plain) = (
        sorted_impostors(pairs, protected),
        sorted_impostors(pairs, plain),
    );
    for target in TARGETS {
        let t = threshold_at(&imp_protected, target);
        let e = errors(pairs.iter().map(|p| (p, p.protected)), t);
        let tp = threshold_at(&imp_plain, target);
        let ep = errors(pairs.iter().map(|p| (p, p.plain)), tp);
        let (cv, (low, high)) = cross_validated(pairs, folds, target);
        println!(
            "| {target:e} | {t:.4} | {} | {} | {low:.3}–{high:.3} | {} | {} |",
            rate(e[0], e[1]),
            rate(ep[0], ep[1]),
            rate(cv[0], cv[1]),
            rate(cv[2], cv[3])
        );
    }
    let same = pairs
        .iter()
        .map(|p| (p.protected - p.plain).abs())
        .fold(0f32, f32::max);
    println!(
        "\nLargest difference between a pair's protected score and its plain cosine: {same:.2e}."
    );
}

/// Pooled errors over folds, and the range of the folds' thresholds: each fold's threshold
/// from the impostor pairs between other folds' people only, applied to the pairs between
/// its own people.
fn cross_validated(pairs: &[Pair], folds: usize, target: f64) -> ([usize; 4], (f32, f32)) {
    let mut total = [0; 4];
    let mut range = (f32::MAX, f32::MIN);
    for fold in 0..folds {
        let train: Vec<f32> = {
            let mut s: Vec<f32> = pairs
                .iter()
                .filter(|p| !p.genuine && p.folds.0 != fold && p.folds.1 != fold)
                .map(|p| p.protected)
                .collect();
            s.sort_by(|a, b| b.total_cmp(a));
            s
        };
        let t = threshold_at(&train, target);
        range = (range.0.min(t), range.1.max(t));
        let test = pairs
            .iter()
            .filter(|p| p.folds == (fold, fold))
            .map(|p| (p, p.protected));
        let e = errors(test, t);
        for (sum, x) in total.iter_mut().zip(e) {
            *sum += x;
        }
    }
    (total, range)
}
