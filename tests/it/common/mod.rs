//! Shared test helpers: fixtures, the manifest, a loaded enroller.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use recognize_agent::contract::Scenario;
use recognize_agent::enroll::Enroller;
use recognize_agent::protect::issue::Issuer;
use recognize_agent::protect::keys::KeyFile;
use recognize_agent::protect::seal::SealingKey;
use recognize_agent::protect::states::{self, ServerState};
use recognize_agent::vision::embed::Embedding;
use recognize_agent::vision::{Models, Precision, default_models_dir};
use serde::Deserialize;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// One entry of `tests/fixtures/manifest.json`, written by `scripts/fixtures.py`.
#[derive(Deserialize, Clone)]
pub struct Case {
    pub file: String,
    pub scenario: String,
    pub triggers: Vec<String>,
}

impl Case {
    pub fn scenario(&self) -> Scenario {
        Scenario::parse(&self.scenario).expect("manifest scenario")
    }
}

pub fn manifest() -> Vec<Case> {
    serde_json::from_slice(&fixture("manifest.json")).expect("manifest.json")
}

/// One enroller for the whole test binary (models load once).
pub fn enroller() -> &'static Enroller {
    static ENROLLER: OnceLock<Enroller> = OnceLock::new();
    ENROLLER.get_or_init(new_enroller)
}

/// An enroller of its own, with the default policies and a fresh [`issuer`].
pub fn new_enroller() -> Enroller {
    let models = Models::load(&default_models_dir(), Precision::F32).expect("models");
    let policies = Scenario::ALL.map(recognize_agent::vision::filters::Policy::for_scenario);
    Enroller::new(models, policies, issuer())
}

/// An issuer with a fresh identity, sealing to the tests' backend key.
pub fn issuer() -> Issuer {
    let identity = KeyFile::ephemeral().expect("a key");
    Issuer::new(identity, sealing_key().public().clone())
}

/// The sealing key file the agent and backend processes of the tests share.
pub fn sealing_key_file() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sealing.key")
}

/// The tests' backend sealing key.
pub fn sealing_key() -> SealingKey {
    SealingKey::load_or_create(&sealing_key_file()).expect("the tests' sealing key")
}

/// The cosine the backend finds between the face enrolled in a pair of states and a
/// device's fresh `embedding`: the server state opened with the tests' sealing key, the
/// probe rotated by the client state's seed.
pub fn match_score(client_state: &str, server_state: &str, embedding: &Embedding) -> f32 {
    let client = recognize_agent::recovery::client_state(client_state).expect("a client state");
    let server = states::decode::<ServerState>(server_state)
        .expect("a server state")
        .state;
    let enrolled = server
        .open_template(&sealing_key())
        .expect("sealed to the tests' key");
    enrolled.cosine(&recognize_agent::recovery::probe(&client, embedding))
}

/// The backend's default match threshold.
pub fn threshold() -> f32 {
    use recognize_agent::backend::matching;
    matching::for_fmr(matching::DEFAULT_FMR).unwrap()
}

/// The identity key file the agent processes of the tests use (in Cargo's scratch
/// directory, never the user's home).
pub fn identity_key() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("identity.key")
}

/// The public key of that identity, as backends trust it (`TRUSTED_AGENT_KEYS`).
pub fn agent_public_key() -> String {
    let key = KeyFile::load_or_create(&identity_key()).expect("the agents' identity key");
    recognize_agent::protect::states::b64(&key.public())
}

pub mod server;

/// A PNG of `w`×`h` 8-bit RGB pixels made of `chunks` (type, data) between its header
/// and its end, with their CRCs.
pub fn png(w: u32, h: u32, chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in chunks {
        chunk(&mut out, &kind[..], data);
    }
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A PNG whose header claims `w`×`h` pixels, followed by a little garbage data.
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    png(w, h, &[(b"IDAT", &[0x78, 0x9c, 0, 0, 0, 0])])
}
