//! The device side of account recovery (the SDK's role). A fresh selfie is rotated by the
//! client state's secret `Q` and sent, with a one-time challenge of the backend and the
//! device's own public key, signed by that key. The backend decides whether it matches
//! the enrolled person and binds the device as an `SDK` device. The device never learns
//! more than that answer, and each try counts against the user's attempt budget.

use crate::backend::client::{CallError, Client};
use crate::backend::messages::{Bind, Bound, bind_message};
use crate::protect::keys::KeyFile;
use crate::protect::rotation::{Rotation, Template};
use crate::protect::states::{self, ClientState, StateError};
use crate::vision::embed::Embedding;

/// Why a recovery did not bind the device.
#[derive(Debug)]
pub enum RecoveryError {
    /// The backend found that the face is not the enrolled person's.
    NoMatch(String),
    /// The user is locked after too many refusals; an administrator must unlock it.
    Locked(String),
    /// The client state cannot be used.
    State(StateError),
    /// The backend refused for another reason, or could not be reached.
    Backend(CallError),
}

impl std::fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecoveryError::NoMatch(detail) | RecoveryError::Locked(detail) => f.write_str(detail),
            RecoveryError::State(e) => write!(f, "client state: {e}"),
            RecoveryError::Backend(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RecoveryError {}

/// The client state in `text`, checked for this pipeline.
pub fn client_state(text: &str) -> Result<ClientState, StateError> {
    let state = states::decode::<ClientState>(text)?.state;
    states::check_model(&state.model)?;
    Ok(state)
}

/// The template of a fresh selfie under the client state's rotation.
pub fn probe(state: &ClientState, embedding: &Embedding) -> Template {
    Rotation::from_seed(&state.seed).protect(&embedding.vector)
}

/// Asks `backend` to bind `device` to the user of `state`, with the face of `embedding`.
pub fn recover(
    state: &ClientState,
    embedding: &Embedding,
    device: &KeyFile,
    backend: &Client,
) -> Result<Bound, RecoveryError> {
    let id = &state.keyless_id;
    let challenge = backend.challenge(id).map_err(refusal)?;
    let request = bind_request(id, &challenge.challenge, &probe(state, embedding), device)
        .map_err(|e| RecoveryError::Backend(CallError::Invalid(format!("challenge: {e}"))))?;
    backend.bind(id, &request).map_err(refusal)
}

/// The request that binds `device` to `keyless_id` with `template`, over the backend's
/// `challenge` (base64url).
pub fn bind_request(
    keyless_id: &str,
    challenge: &str,
    template: &Template,
    device: &KeyFile,
) -> Result<Bind, StateError> {
    let nonce = states::bytes(challenge, "challenge")?;
    let template = template.to_bytes();
    let public = device.public();
    let signature = device.sign(&bind_message(keyless_id, &nonce, &public, &template));
    Ok(Bind {
        challenge: challenge.to_string(),
        template: states::b64(&template),
        device_public_key: states::b64(&public),
        signature: states::b64(&signature),
    })
}

/// A backend refusal as the device reports it: no match (403), locked (423), or other.
fn refusal(e: CallError) -> RecoveryError {
    match e {
        CallError::Refused {
            status: 403,
            detail,
        } => RecoveryError::NoMatch(detail),
        CallError::Refused {
            status: 423,
            detail,
        } => RecoveryError::Locked(detail),
        other => RecoveryError::Backend(other),
    }
}
