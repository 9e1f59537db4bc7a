//! `clientState` and `serverState`: versioned envelopes, `<prefix>.<base64url(JSON)>`,
//! each signed by the agent that made it.
//!
//! The client state holds what a new device needs to recover the biometric key from a
//! fresh selfie (the projection seed, the bits kept, the helper data, the key's salt and
//! public part); the server state what the backend registers (the public key, scenario,
//! creation time). Neither holds an image or an embedding. Binary fields are base64url.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use ed25519_dalek::SigningKey;

use super::keys::{self, KeyFile};
use super::sketch::Sketch;
use crate::contract::Scenario;
use crate::vision::embed::Embedding;

/// Identifies the face pipeline and template protection a state was made with; recovery
/// must use the same.
pub const MODEL_ID: &str = "blazeface-back-256+mobilefacenet-192+bch511-t50/1";

/// Device type a client state is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientType {
    Backup,
    Temporary,
}

impl ClientType {
    /// `BACKUP` or `TEMPORARY`, as in the `Client-State-Type` header.
    pub fn parse(s: &str) -> Option<ClientType> {
        match s {
            "BACKUP" => Some(ClientType::Backup),
            "TEMPORARY" => Some(ClientType::Temporary),
            _ => None,
        }
    }
}

/// What a new device needs to recover the key from a fresh selfie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientState {
    pub keyless_id: String,
    #[serde(rename = "type")]
    pub client_type: ClientType,
    pub model: String,
    /// Seed of the per-enrolment random projection, for unlinkability.
    pub seed: String,
    /// Salt of the key derivation.
    pub salt: String,
    /// Which projections are kept: a mask of 2047 bits.
    pub bits: String,
    /// Helper data: codeword ⊕ template bits (511 bits).
    pub helper: String,
    /// The biometric public key the recovered key must match.
    pub public_key: String,
    /// The agent that made the state, and its signature over the rest.
    pub agent_key: String,
    pub signature: String,
}

/// What the backend stores to register the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerState {
    pub keyless_id: String,
    /// The device type of the client state made with it, which the backend lists.
    pub client_type: ClientType,
    pub scenario: Scenario,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    pub model: String,
    /// The biometric public key the backend checks challenges against.
    pub public_key: String,
    /// The agent that made the state, and its signature over the rest.
    pub agent_key: String,
    pub signature: String,
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
    /// A field holds no valid value.
    Field(String),
    /// The agent's signature does not verify: the state was altered.
    Signature,
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::WrongKind { expected } => {
                write!(f, "not a version-1 state (expected prefix '{expected}.')")
            }
            StateError::Encoding => f.write_str("the state is not valid base64url"),
            StateError::Content(why) => write!(f, "the state is damaged: {why}"),
            StateError::Field(why) => write!(f, "the state is damaged: {why}"),
            StateError::Signature => {
                f.write_str("the state's signature does not verify: it was altered")
            }
        }
    }
}

impl std::error::Error for StateError {}

/// A state string: `<PREFIX>.<base64url(JSON)>`, signed by the agent that made it.
pub trait Envelope: Serialize + DeserializeOwned + Clone {
    /// Kind and version, e.g. `rcc1`.
    const PREFIX: &'static str;

    fn agent_key(&self) -> &str;
    fn signature(&mut self) -> &mut String;

    fn encode(&self) -> String {
        // Serialising these plain structs cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{}.{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(json))
    }

    /// What the signature covers: the encoding with an empty signature.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature().clear();
        unsigned.encode().into_bytes()
    }

    /// The state signed by `agent`.
    fn sign(mut self, agent: &KeyFile) -> Self {
        let signature = agent.sign(&self.signed_bytes());
        *self.signature() = URL_SAFE_NO_PAD.encode(signature);
        self
    }

    /// Parses `text` and checks the signature of the agent key it names (whether that
    /// agent is trusted is the reader's decision).
    fn decode(text: &str) -> Result<Self, StateError> {
        let payload = text
            .trim()
            .strip_prefix(Self::PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(StateError::WrongKind {
                expected: Self::PREFIX,
            })?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| StateError::Encoding)?;
        let mut state: Self =
            serde_json::from_slice(&json).map_err(|e| StateError::Content(e.to_string()))?;
        let agent = bytes(state.agent_key(), "agentKey")?;
        let signature = bytes(state.signature(), "signature")?;
        if !keys::verify(&agent, &state.signed_bytes(), &signature) {
            return Err(StateError::Signature);
        }
        Ok(state)
    }
}

impl Envelope for ClientState {
    const PREFIX: &'static str = "rcc1";

    fn agent_key(&self) -> &str {
        &self.agent_key
    }

    fn signature(&mut self) -> &mut String {
        &mut self.signature
    }
}

impl Envelope for ServerState {
    const PREFIX: &'static str = "rcs1";

    fn agent_key(&self) -> &str {
        &self.agent_key
    }

    fn signature(&mut self) -> &mut String {
        &mut self.signature
    }
}

impl ClientState {
    /// The biometric key, if `embedding` is close enough to the enrolled face: the secret
    /// decodes and its key's public part is the state's. `Ok(None)` when it is not.
    pub fn recover_key(&self, embedding: &Embedding) -> Result<Option<SigningKey>, StateError> {
        if self.model != MODEL_ID {
            return Err(StateError::Field(format!(
                "made with face pipeline '{}', this agent runs '{MODEL_ID}'",
                self.model
            )));
        }
        let sketch = self.sketch()?;
        let salt = bytes(&self.salt, "salt")?;
        let public = bytes(&self.public_key, "publicKey")?;
        Ok(sketch
            .recover(embedding)
            .map(|secret| keys::biometric_key(&secret, &salt))
            .filter(|key| key.verifying_key().as_bytes()[..] == public[..]))
    }

    /// The sketch the state carries, checked.
    pub fn sketch(&self) -> Result<Sketch, StateError> {
        let (seed, mask, helper) = (
            bytes(&self.seed, "seed")?,
            bytes(&self.bits, "bits")?,
            bytes(&self.helper, "helper")?,
        );
        Sketch::from_parts(&seed, &mask, &helper).map_err(|e| StateError::Field(e.0.into()))
    }
}

/// The base64url bytes of `field`.
pub fn bytes(value: &str, field: &'static str) -> Result<Vec<u8>, StateError> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| StateError::Field(format!("'{field}' is not base64url")))
}

/// Bytes as base64url.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The 32 bytes of a well-formed Ed25519 public key (a curve point) in base64url.
pub fn public_key(value: &str) -> Option<[u8; 32]> {
    let key = <[u8; 32]>::try_from(URL_SAFE_NO_PAD.decode(value).ok()?).ok()?;
    keys::is_public_key(&key).then_some(key)
}

/// `N` fresh random bytes from the OS.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// A fresh random (version 4) UUID, as ids of users and devices are.
pub fn random_id() -> Result<String, getrandom::Error> {
    Ok(uuid::Builder::from_random_bytes(random_bytes()?)
        .into_uuid()
        .to_string())
}

/// Seconds since the Unix epoch, as states and challenges date things.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> KeyFile {
        KeyFile {
            key: ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        }
    }

    fn client(agent: &KeyFile) -> ClientState {
        ClientState {
            keyless_id: "k".into(),
            client_type: ClientType::Backup,
            model: MODEL_ID.into(),
            seed: b64(&[1; 32]),
            salt: b64(&[2; 16]),
            bits: b64(&[0; 256]),
            helper: b64(&[0; 64]),
            public_key: b64(&[3; 32]),
            agent_key: b64(&agent.public()),
            signature: String::new(),
        }
        .sign(agent)
    }

    #[test]
    fn signed_states_round_trip_and_damage_is_refused() {
        let agent = agent();
        let c = client(&agent);
        let text = c.encode();
        assert!(text.starts_with("rcc1."));
        assert_eq!(ClientState::decode(&text), Ok(c.clone()));
        assert_eq!(
            ServerState::decode(&text),
            Err(StateError::WrongKind {
                expected: ServerState::PREFIX
            })
        );
        assert!(matches!(
            ClientState::decode(&text[..text.len() - 7]),
            Err(StateError::Content(_) | StateError::Encoding)
        ));
        assert_eq!(ClientState::decode("rcc1.@@@"), Err(StateError::Encoding));
        // Any field changed after signing.
        let mut altered = c.clone();
        altered.public_key = b64(&[4; 32]);
        assert_eq!(
            ClientState::decode(&altered.encode()),
            Err(StateError::Signature)
        );
        let mut unsigned = c;
        unsigned.signature = "!".into();
        assert!(matches!(
            ClientState::decode(&unsigned.encode()),
            Err(StateError::Field(_))
        ));
    }

    #[test]
    fn a_selection_of_the_wrong_size_is_refused() {
        let c = client(&agent());
        assert!(matches!(c.sketch(), Err(StateError::Field(_))));
    }
}
