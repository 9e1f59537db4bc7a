//! `clientState` and `serverState`, version 2: `<prefix>.<kid>.<payload>.<signature>`,
//! each part base64url. `kid` is the agent's Ed25519 public key, `payload` a JSON
//! document, and `signature` the agent's over [`CONTEXT`] ‖ NUL ‖ `<prefix>.<kid>.<payload>`
//! exactly as sent. A reader checks the signature before it parses the payload; whether
//! it trusts the agent is its own decision.
//!
//! The client state holds the seed of the enrolment's secret rotation and ids, nothing
//! derived from the face. The server state holds the protected template sealed to the
//! backend ([`super::seal`]), the scenario, and when it was made and must be registered by.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::keys::{self, KeyFile};
use super::rotation::Template;
use super::seal::{SealError, Sealed, SealingKey};
use crate::contract::Scenario;

/// Identifies the face pipeline and template protection a state was made with; recovery
/// and matching must use the same.
pub const MODEL_ID: &str = "blazeface-back-256+mobilefacenet-192+haar-rotation/2";

/// What every state signature covers first, so that no other signature of the agent's
/// key can pass for a state's.
pub const CONTEXT: &[u8] = b"recognize-agent/state/v2";

/// Longest state accepted, in characters: a server state is about 1.9 KB.
pub const MAX_STATE_CHARS: usize = 8 * 1024;

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

/// What a new device needs to protect a fresh selfie as the enrolment did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientState {
    pub keyless_id: String,
    #[serde(rename = "type")]
    pub client_type: ClientType,
    pub model: String,
    /// Seed of the enrolment's secret rotation ([`super::rotation`]).
    #[serde(with = "base64url")]
    pub seed: [u8; 32],
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
}

/// What the backend registers the user from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerState {
    pub keyless_id: String,
    /// The device type of the client state made with it, which the backend lists.
    #[serde(rename = "type")]
    pub client_type: ClientType,
    pub scenario: Scenario,
    pub model: String,
    /// Issued at, and the time after which no backend registers it (Unix seconds).
    pub iat: u64,
    pub exp: u64,
    /// Id ([`super::seal::SealingPublicKey::id`]) of the backend key the template is
    /// sealed to.
    #[serde(with = "base64url")]
    pub sealed_to: [u8; 12],
    /// The sealed template: HPKE's encapsulated key and ciphertext.
    #[serde(with = "base64url")]
    pub enc: [u8; 32],
    #[serde(with = "base64url")]
    pub template: Vec<u8>,
}

impl ServerState {
    /// The protected template, opened with the backend's `key`: a unit vector, or an
    /// error if the box was sealed to another key, for another user, or altered.
    pub fn open_template(&self, key: &SealingKey) -> Result<Template, SealError> {
        let sealed = Sealed {
            enc: self.enc,
            ciphertext: self.template.clone(),
        };
        let plain = key.open(&sealed, &template_aad(&self.keyless_id, &self.model))?;
        Template::from_bytes(&plain).ok_or(SealError::Open)
    }
}

/// A state and the agent key that signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed<T> {
    pub agent: [u8; 32],
    pub state: T,
}

/// A kind of state and its prefix.
pub trait Kind: Serialize + DeserializeOwned {
    /// This version's prefix, e.g. `rcc2`.
    const PREFIX: &'static str;
    /// Version 1's prefix, refused with a clear error.
    const RETIRED: &'static str;
}

impl Kind for ClientState {
    const PREFIX: &'static str = "rcc2";
    const RETIRED: &'static str = "rcc1";
}

impl Kind for ServerState {
    const PREFIX: &'static str = "rcs2";
    const RETIRED: &'static str = "rcs1";
}

/// Why a state string was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    /// Not `<prefix>.<kid>.<payload>.<signature>` with the expected prefix.
    WrongKind { expected: &'static str },
    /// A version-1 state.
    Retired,
    /// A part is not base64url, or has the wrong length.
    Encoding(&'static str),
    /// The agent's signature does not verify: the state was altered.
    Signature,
    /// The signed payload is not the expected document.
    Content(String),
    /// Made for another face pipeline than this one's.
    Model(String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::WrongKind { expected } => write!(
                f,
                "not a version-2 state (expected '{expected}.<kid>.<payload>.<signature>')"
            ),
            StateError::Retired => f.write_str(
                "a version-1 state, which is no longer accepted: its template protection was \
                 replaced; enrol the person again",
            ),
            StateError::Encoding(part) => {
                write!(f, "the state is damaged: its {part} is not valid base64url")
            }
            StateError::Signature => {
                f.write_str("the state's signature does not verify: it was altered")
            }
            StateError::Content(why) => write!(f, "the state is damaged: {why}"),
            StateError::Model(model) => write!(
                f,
                "made with face pipeline '{model}'; this one runs '{MODEL_ID}'"
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// `state` signed by `agent`, as a string.
pub fn encode<T: Kind>(state: &T, agent: &KeyFile) -> String {
    // Serialising these plain structs cannot fail.
    let json = serde_json::to_vec(state).unwrap_or_default();
    let signed = format!(
        "{}.{}.{}",
        T::PREFIX,
        b64(&agent.public()),
        URL_SAFE_NO_PAD.encode(json)
    );
    let signature = agent.sign(&signed_message(&signed));
    format!("{signed}.{}", b64(&signature))
}

/// The state in `text`, once its signature verifies with the key it names.
pub fn decode<T: Kind>(text: &str) -> Result<Signed<T>, StateError> {
    let text = text.trim();
    let wrong = StateError::WrongKind {
        expected: T::PREFIX,
    };
    if text
        .strip_prefix(T::RETIRED)
        .is_some_and(|r| r.starts_with('.'))
    {
        return Err(StateError::Retired);
    }
    if text.len() > MAX_STATE_CHARS {
        return Err(StateError::Content(format!(
            "longer than {MAX_STATE_CHARS} characters"
        )));
    }
    let (signed, signature) = text.rsplit_once('.').ok_or(StateError::WrongKind {
        expected: T::PREFIX,
    })?;
    let mut parts = signed.split('.');
    let (Some(prefix), Some(kid), Some(payload), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(wrong);
    };
    if prefix != T::PREFIX {
        return Err(wrong);
    }
    let agent = public_key(kid).ok_or(StateError::Encoding("kid"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| StateError::Encoding("signature"))?;
    if !keys::verify(&agent, &signed_message(signed), &signature) {
        return Err(StateError::Signature);
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| StateError::Encoding("payload"))?;
    let state = serde_json::from_slice(&json).map_err(|e| StateError::Content(e.to_string()))?;
    Ok(Signed { agent, state })
}

/// What a state's signature covers.
fn signed_message(signed: &str) -> Vec<u8> {
    [CONTEXT, b"\0", signed.as_bytes()].concat()
}

/// `Ok` if `model` is this pipeline's.
pub fn check_model(model: &str) -> Result<(), StateError> {
    if model == MODEL_ID {
        Ok(())
    } else {
        Err(StateError::Model(model.to_string()))
    }
}

/// What a sealed template is bound to: the user and the pipeline.
pub(super) fn template_aad(keyless_id: &str, model: &str) -> Vec<u8> {
    [keyless_id.as_bytes(), b"\0", model.as_bytes()].concat()
}

/// Bytes as base64url in JSON documents.
mod base64url {
    use super::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(|_| D::Error::custom("not base64url"))?;
        let len = bytes.len();
        T::try_from(bytes).map_err(|_| D::Error::custom(format!("{len} bytes: the wrong length")))
    }
}

/// The base64url bytes of `field`.
pub fn bytes(value: &str, field: &'static str) -> Result<Vec<u8>, StateError> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| StateError::Encoding(field))
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
    Ok(uuid_of(random_bytes()?))
}

/// The version 4 UUID of 16 random bytes.
pub fn uuid_of(bytes: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> KeyFile {
        KeyFile {
            key: ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        }
    }

    fn client() -> ClientState {
        ClientState {
            keyless_id: "k".into(),
            client_type: ClientType::Backup,
            model: MODEL_ID.into(),
            seed: [1; 32],
            iat: 100,
        }
    }

    #[test]
    fn signed_states_round_trip_and_damage_is_refused() {
        let agent = agent();
        let text = encode(&client(), &agent);
        assert!(text.starts_with("rcc2."));
        let got = decode::<ClientState>(&text).unwrap();
        assert_eq!((got.agent, got.state), (agent.public(), client()));
        assert_eq!(
            decode::<ServerState>(&text),
            Err(StateError::WrongKind { expected: "rcs2" })
        );
        assert_eq!(
            decode::<ClientState>(&text[..text.len() - 7]),
            Err(StateError::Encoding("signature"))
        );
        // Any byte of the payload changed after signing.
        let (head, signature) = text.rsplit_once('.').unwrap();
        let (front, payload) = head.rsplit_once('.').unwrap();
        let mut json = URL_SAFE_NO_PAD.decode(payload).unwrap();
        json[5] ^= 1;
        let altered = format!("{front}.{}.{signature}", b64(&json));
        assert_eq!(decode::<ClientState>(&altered), Err(StateError::Signature));
        // Signed by another key than the one it names.
        let other = KeyFile::ephemeral().unwrap();
        let forged =
            encode(&client(), &other).replacen(&b64(&other.public()), &b64(&agent.public()), 1);
        assert_eq!(decode::<ClientState>(&forged), Err(StateError::Signature));
        assert_eq!(
            decode::<ClientState>("rcc2.@@@.e30.AA"),
            Err(StateError::Encoding("kid"))
        );
        assert!(matches!(
            decode::<ClientState>(&format!("{text}.x")),
            Err(StateError::WrongKind { .. })
        ));
    }

    /// A well-signed payload that is not a state (an unknown field) is refused after the
    /// signature check, not before.
    #[test]
    fn a_signed_payload_of_another_shape_is_refused() {
        let agent = agent();
        let json = br#"{"keylessId":"k","type":"BACKUP","model":"m","seed":"AA","iat":1}"#;
        let signed = format!("rcc2.{}.{}", b64(&agent.public()), b64(json));
        let text = format!("{signed}.{}", b64(&agent.sign(&signed_message(&signed))));
        assert!(matches!(
            decode::<ClientState>(&text),
            Err(StateError::Content(why)) if why.contains("wrong length")
        ));
    }

    #[test]
    fn version_1_states_are_told_apart() {
        assert_eq!(
            decode::<ClientState>(" rcc1.eyJ9"),
            Err(StateError::Retired)
        );
        assert_eq!(decode::<ServerState>("rcs1.eyJ9"), Err(StateError::Retired));
        assert!(
            StateError::Retired
                .to_string()
                .contains("enrol the person again")
        );
        assert_eq!(check_model(MODEL_ID), Ok(()));
        assert!(check_model("blazeface-back-256+mobilefacenet-192+bch511-t50/1").is_err());
    }
}
