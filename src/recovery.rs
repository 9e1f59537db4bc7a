//! The device side of account recovery (the SDK's role). A fresh selfie and the client
//! state recover the biometric key on the device; the key signs a one-time challenge of
//! the backend together with the device's own public key, which binds the device as an
//! `SDK` device. Neither the selfie nor the key leaves the device.

use ed25519_dalek::{Signer, SigningKey};

use crate::backend::client::{CallError, Client};
use crate::backend::messages::{Bind, Bound, proof_message};
use crate::protect::keys::KeyFile;
use crate::protect::states::{self, ClientState, StateError};
use crate::vision::embed::Embedding;

/// Why a recovery did not bind the device.
#[derive(Debug)]
pub enum RecoveryError {
    /// The face does not recover the state's key: another person, or too different a photo.
    NoMatch,
    /// The client state cannot be used.
    State(StateError),
    /// The backend refused or could not be reached.
    Backend(CallError),
}

impl std::fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecoveryError::NoMatch => f.write_str("the face does not recover this state's key"),
            RecoveryError::State(e) => write!(f, "client state: {e}"),
            RecoveryError::Backend(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RecoveryError {}

/// Recovers the key of `state` from `embedding` and binds `device` on `backend`.
/// Nothing is sent to the backend unless the key was recovered.
pub fn recover(
    state: &ClientState,
    embedding: &Embedding,
    device: &KeyFile,
    backend: &Client,
) -> Result<Bound, RecoveryError> {
    let key = state
        .recover_key(embedding)
        .map_err(RecoveryError::State)?
        .ok_or(RecoveryError::NoMatch)?;
    let id = &state.keyless_id;
    let challenge = backend.challenge(id).map_err(RecoveryError::Backend)?;
    let proof = proof(&key, id, &challenge.challenge, &device.public())
        .map_err(|e| RecoveryError::Backend(CallError::Invalid(format!("challenge: {e}"))))?;
    backend.bind(id, &proof).map_err(RecoveryError::Backend)
}

/// The binding of `device_key` to `keyless_id`, proven by the biometric `key` over the
/// backend's `challenge` (base64url).
pub fn proof(
    key: &SigningKey,
    keyless_id: &str,
    challenge: &str,
    device_key: &[u8; 32],
) -> Result<Bind, StateError> {
    let nonce = states::bytes(challenge, "challenge")?;
    let signature = key.sign(&proof_message(keyless_id, &nonce, device_key));
    Ok(Bind {
        challenge: challenge.to_string(),
        device_public_key: states::b64(device_key),
        signature: states::b64(&signature.to_bytes()),
    })
}
