//! The template protection on real faces, as an attacker would try it. Each test is an
//! attack that must fail: the client state says nothing of the face, the stored template
//! without the client state's seed is a random vector that matches nobody, two
//! enrolments of one face cannot be linked, and a sealed template opens only at its
//! backend. The genuine path keeps the model's own cosine.

use crate::common::{enroller, fixture, issuer, sealing_key, threshold};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use recognize_agent::contract::Scenario;
use recognize_agent::protect::keys::KeyFile;
use recognize_agent::protect::rotation::{Rotation, random_unit};
use recognize_agent::protect::seal::{SealError, SealingKey};
use recognize_agent::protect::states::{self, ClientState, ClientType, ServerState};
use recognize_agent::vision::decode::{self, DecodeOptions};
use recognize_agent::vision::embed::{DIM, Embedding};

const FACES: [&str; 8] = [
    "clean/obama.jpg",
    "clean/obama2.jpg",
    "clean/obama_dark.jpg",
    "clean/biden.jpg",
    "clean/biden_bright.jpg",
    "clean/astronaut.jpg",
    "clean/obama3.jpg",
    "clean/biden_dark.jpg",
];

fn embedding(name: &str) -> Embedding {
    let image = decode::decode(&fixture(name), &DecodeOptions::file(50_000_000)).unwrap();
    let analysis = enroller().models.analyse(&image).unwrap();
    analysis
        .primary
        .unwrap_or_else(|| panic!("{name}: no face"))
        .embedding
}

fn cosine(a: &[f32; DIM], b: &[f32; DIM]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Mean and standard deviation.
fn moments(values: &[f32]) -> (f32, f32) {
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n;
    (mean, var.sqrt())
}

/// The seed of trial `i`.
fn seed(i: u32) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&i.to_le_bytes());
    s[31] = 0x5E;
    s
}

/// The client state is a function of the random draws alone: two different people
/// enrolled with the same generator, at the same time, by the same agent, give the same
/// bytes. (The server states differ: they hold the sealed templates.)
#[test]
fn the_client_state_holds_nothing_of_the_face() {
    let issuer = issuer();
    let issue = |face: &str| {
        let mut rng = ChaCha20Rng::from_seed([42; 32]);
        let e = embedding(face);
        issuer
            .issue(
                &e.vector,
                Scenario::Selfie,
                ClientType::Backup,
                1_700_000_000,
                &mut rng,
            )
            .unwrap()
    };
    let (obama, biden) = (issue("clean/obama.jpg"), issue("clean/biden.jpg"));
    assert_eq!(obama.client_state, biden.client_state);
    assert_eq!(obama.keyless_id, biden.keyless_id);
    assert_ne!(obama.server_state, biden.server_state);
}

/// Whoever holds a server state's template without the seed (the backend, a thief of
/// its database): the template and every reading of it with a guessed rotation are as
/// far from the enrolled face as a random vector is, and match no one's face. With the
/// seed, the same face matches.
#[test]
fn the_template_without_the_seed_rebuilds_nothing_and_matches_nobody() {
    let faces: Vec<Embedding> = FACES.iter().map(|f| embedding(f)).collect();
    let threshold = threshold();
    let mut to_own_face = Vec::new();
    let mut best_against_anyone = f32::MIN;
    for i in 0..200 {
        let enrolled = &faces[i as usize % faces.len()];
        let template = Rotation::from_seed(&seed(i)).protect(&enrolled.vector);
        // The attacker's readings: the template as it is, and under guessed seeds.
        let mut guesses = vec![template.0];
        guesses.extend(
            (0..4).map(|g| Rotation::from_seed(&seed(10_000 + 4 * i + g)).apply(&template.0)),
        );
        for guess in &guesses {
            to_own_face.push(cosine(guess, &enrolled.vector));
            for face in &faces {
                best_against_anyone = best_against_anyone.max(cosine(guess, &face.vector));
            }
        }
    }
    let random: Vec<f32> = (0..1000)
        .map(|i| cosine(&random_unit(2 * i), &random_unit(2 * i + 1)))
        .collect();
    let ((mean, sd), (random_mean, random_sd)) = (moments(&to_own_face), moments(&random));
    eprintln!(
        "rebuilt against the enrolled face: mean {mean:.4}, sd {sd:.4} (random vectors: mean \
         {random_mean:.4}, sd {random_sd:.4}, 1/sqrt(192) = {:.4}); best against any face \
         {best_against_anyone:.3}, threshold {threshold:.3}",
        1.0 / (DIM as f32).sqrt()
    );
    // 1,000 cosines of sd 0.072: the mean within 4 standard errors of 0.
    assert!(
        mean.abs() < 4.0 * random_sd / (to_own_face.len() as f32).sqrt(),
        "{mean}"
    );
    assert!(
        (sd / random_sd - 1.0).abs() < 0.15,
        "sd {sd} against {random_sd}"
    );
    assert!(best_against_anyone < threshold, "{best_against_anyone}");
    // The genuine path, for contrast: the seed turns the same face's probe into a match.
    let q = Rotation::from_seed(&seed(0));
    let (a, b) = (q.protect(&faces[0].vector), q.protect(&faces[1].vector));
    assert!(a.cosine(&b) >= threshold);
    assert!((a.cosine(&b) - faces[0].cosine(&faces[1])).abs() < 1e-5);
}

/// Two enrolments of one face: their templates' cosine is distributed as two random unit
/// vectors' (mean 0, sd 1/sqrt(192)), whichever face, so no one can tell that two
/// templates, or two server states, are one person's.
#[test]
fn two_enrolments_of_one_face_are_unlinkable() {
    let faces: Vec<Embedding> = FACES.iter().map(|f| embedding(f)).collect();
    let mut same_face = Vec::new();
    for i in 0..800u32 {
        let e = &faces[i as usize % faces.len()].vector;
        let t1 = Rotation::from_seed(&seed(2 * i)).protect(e);
        let t2 = Rotation::from_seed(&seed(2 * i + 1)).protect(e);
        same_face.push(t1.cosine(&t2));
    }
    let random: Vec<f32> = (0..800)
        .map(|i| cosine(&random_unit(5000 + 2 * i), &random_unit(5001 + 2 * i)))
        .collect();
    let (mean, sd) = moments(&same_face);
    let (random_mean, random_sd) = moments(&random);
    let max = same_face.iter().fold(0f32, |m, c| m.max(c.abs()));
    let linked = same_face.iter().filter(|c| **c >= threshold()).count();
    eprintln!(
        "t1·t2 of one face, 800 pairs: mean {mean:.4}, sd {sd:.4}, max |cos| {max:.3}, \
         {linked} above the threshold; two random vectors: mean {random_mean:.4}, sd \
         {random_sd:.4}"
    );
    let se = 1.0 / ((DIM * same_face.len()) as f32).sqrt();
    assert!(mean.abs() < 4.0 * se, "mean {mean}");
    assert!((sd * (DIM as f32).sqrt() - 1.0).abs() < 0.12, "sd {sd}");
    assert_eq!(linked, 0);
    // A two-sample Kolmogorov–Smirnov distance: 1.73·sqrt(2/800) = 0.087 rejects at 0.5 %.
    let ks = ks_distance(&same_face, &random);
    assert!(ks < 0.087, "KS distance {ks}");
}

fn ks_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut all: Vec<f32> = a.iter().chain(b).copied().collect();
    all.sort_by(f32::total_cmp);
    let cdf = |s: &[f32], x: f32| s.iter().filter(|v| **v <= x).count() as f32 / s.len() as f32;
    all.iter()
        .map(|x| (cdf(a, *x) - cdf(b, *x)).abs())
        .fold(0.0, f32::max)
}

/// The server state as a customer handles it: its template opens only with the backend's
/// key; altered, the state's signature fails; re-signed by a trusted agent around
/// another ciphertext, the box still does not open.
#[test]
fn a_sealed_template_opens_only_at_its_backend() {
    let agent = KeyFile::ephemeral().unwrap();
    let issuer = recognize_agent::protect::issue::Issuer::new(
        KeyFile {
            key: agent.key.clone(),
        },
        sealing_key().public().clone(),
    );
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let e = embedding("clean/obama.jpg");
    let issued = issuer
        .issue(&e.vector, Scenario::Selfie, ClientType::Backup, 1, &mut rng)
        .unwrap();
    let server = states::decode::<ServerState>(&issued.server_state)
        .unwrap()
        .state;
    let enrolled = server.open_template(&sealing_key()).unwrap();
    let client = states::decode::<ClientState>(&issued.client_state)
        .unwrap()
        .state;
    let probe = Rotation::from_seed(&client.seed).protect(&e.vector);
    assert!(enrolled.cosine(&probe) > 0.9999);
    // Another key (the customer's own guess) opens nothing.
    let other = SealingKey::from_secret(&[9; 32]);
    assert_eq!(server.open_template(&other), Err(SealError::Open));
    // Nor does the box moved to another user.
    let mut moved = server.clone();
    moved.keyless_id = "someone-else".into();
    assert_eq!(moved.open_template(&sealing_key()), Err(SealError::Open));
    // Tampered ciphertext, re-signed by the agent: refused by the AEAD.
    let mut altered = server.clone();
    altered.template[10] ^= 0x40;
    let resigned = states::encode(&altered, &agent);
    let reread = states::decode::<ServerState>(&resigned).unwrap().state;
    assert_eq!(reread.open_template(&sealing_key()), Err(SealError::Open));
    // Tampered without the agent's key: the signature check refuses it first.
    let forged = resigned.replacen(
        &states::b64(&agent.public()),
        &states::b64(&KeyFile::ephemeral().unwrap().public()),
        1,
    );
    assert_eq!(
        states::decode::<ServerState>(&forged),
        Err(states::StateError::Signature)
    );
}
