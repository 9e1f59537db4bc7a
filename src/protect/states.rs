//! `clientState` and `serverState`: versioned envelopes, `<prefix>.<base64url(JSON)>`.
//!
//! Version 1 carries the fields the recovery protocol needs; the protected-template
//! parts (`helper`, `bits`, `publicKey`, `signature`) are filled by the template
//! protection once it exists, without changing the envelope or the contract. No state
//! ever holds an image or an embedding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::contract::Scenario;

/// Identifies the face pipeline a template was made with; recovery must use the same.
pub const MODEL_ID: &str = "blazeface-back-256+mobilefacenet-192/1";

/// Device type a client state is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientType {
    Backup,
    Temporary,
}

/// What a new device needs to recover the key from a fresh selfie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientState {
    pub keyless_id: String,
    #[serde(rename = "type")]
    pub client_type: ClientType,
    pub model: String,
    /// Seed of the per-enrolment random projection (base64url), for unlinkability.
    pub seed: String,
    /// Salt of the key derivation (base64url).
    pub salt: String,
    /// Indices of the template bits kept (base64url), once binarisation selects bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits: Option<String>,
    /// Helper data: codeword ⊕ binary template (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<String>,
    /// The biometric public key the recovered key must match (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// What the backend stores to register the user (uncommitted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerState {
    pub keyless_id: String,
    pub scenario: Scenario,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The agent identity that signed this state (base64url public key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Why a state string was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    /// Not `<prefix>.<payload>` with the expected prefix.
    WrongKind { expected: &'static str },
    /// The payload is not base64url.
    Encoding,
    /// The payload is not the expected JSON document (truncated or altered).
    Content(String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::WrongKind { expected } => {
                write!(f, "not a version-1 state (expected prefix '{expected}.')")
            }
            StateError::Encoding => f.write_str("the state is not valid base64url"),
            StateError::Content(why) => write!(f, "the state is damaged: {why}"),
        }
    }
}

impl std::error::Error for StateError {}

/// A state string: `<PREFIX>.<base64url(JSON)>`.
pub trait Envelope: Serialize + DeserializeOwned {
    /// Kind and version, e.g. `rcc1`.
    const PREFIX: &'static str;

    fn encode(&self) -> String {
        // Serialising these plain structs cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{}.{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(json))
    }

    fn decode(text: &str) -> Result<Self, StateError> {
        let payload = text
            .strip_prefix(Self::PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(StateError::WrongKind {
                expected: Self::PREFIX,
            })?;
        let json = URL_SAFE_NO_PAD
            .decode(payload.trim())
            .map_err(|_| StateError::Encoding)?;
        serde_json::from_slice(&json).map_err(|e| StateError::Content(e.to_string()))
    }
}

impl Envelope for ClientState {
    const PREFIX: &'static str = "rcc1";
}

impl Envelope for ServerState {
    const PREFIX: &'static str = "rcs1";
}

/// `N` fresh random bytes from the OS.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// `N` fresh random bytes from the OS, as base64url.
pub fn random_b64<const N: usize>() -> Result<String, getrandom::Error> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<N>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientState {
        ClientState {
            keyless_id: "k".into(),
            client_type: ClientType::Backup,
            model: MODEL_ID.into(),
            seed: random_b64::<32>().unwrap(),
            salt: random_b64::<16>().unwrap(),
            bits: None,
            helper: None,
            public_key: None,
        }
    }

    #[test]
    fn states_round_trip_and_reject_damage() {
        let c = client();
        let text = c.encode();
        assert!(text.starts_with("rcc1."));
        assert_eq!(ClientState::decode(&text), Ok(c));
        assert_eq!(
            ServerState::decode(&text),
            Err(StateError::WrongKind {
                expected: ServerState::PREFIX
            })
        );
        assert!(matches!(
            ClientState::decode(&text[..text.len() - 7]),
            Err(StateError::Content(_))
        ));
        assert_eq!(ClientState::decode("rcc1.@@@"), Err(StateError::Encoding));
    }

    #[test]
    fn seeds_are_fresh() {
        assert_ne!(client().seed, client().seed);
    }
}
