//! The backend's request and response bodies, shared by the server, the agent (online
//! enrolment) and the device (recovery), and the message a binding request signs.

use serde::{Deserialize, Serialize};

use crate::protect::states::ClientType;

/// Body of `POST /v1/uncommitted-users` and `POST /v1/users`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Register {
    pub server_state: String,
}

/// Answer to a registration or a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub keyless_id: String,
}

/// Answer to `POST /v1/users/{keylessId}/challenges`: a one-time nonce (base64url).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    pub challenge: String,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Body of `POST /v1/users/{keylessId}/devices`: a fresh selfie's template under the
/// enrolment's rotation, the new device's public key, and that key's signature over
/// [`bind_message`] (binary fields base64url).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bind {
    pub challenge: String,
    pub template: String,
    pub device_public_key: String,
    pub signature: String,
}

/// Answer to a binding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bound {
    pub keyless_id: String,
    pub device_id: String,
    #[serde(rename = "type")]
    pub device_type: DeviceType,
}

/// Answer to `GET /v1/users/{keylessId}/devices`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Devices {
    pub devices: Vec<Device>,
}

/// Device types as stored and listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeviceType {
    Backup,
    Temporary,
    Sdk,
}

#[cfg(feature = "backend")]
impl DeviceType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            DeviceType::Backup => "BACKUP",
            DeviceType::Temporary => "TEMPORARY",
            DeviceType::Sdk => "SDK",
        }
    }

    pub(super) fn parse(s: &str) -> Option<DeviceType> {
        [DeviceType::Backup, DeviceType::Temporary, DeviceType::Sdk]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

impl From<ClientType> for DeviceType {
    fn from(t: ClientType) -> Self {
        match t {
            ClientType::Backup => DeviceType::Backup,
            ClientType::Temporary => DeviceType::Temporary,
        }
    }
}

/// A device bound to a user, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub device_id: String,
    #[serde(rename = "type")]
    pub device_type: DeviceType,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// Separates binding requests from every other use of a device key.
const BIND_TAG: &[u8] = b"recognize-agent/bind-device/v2\0";

/// What the device key signs to ask for its binding: tag ‖ keylessId ‖ NUL ‖ challenge
/// (32 bytes) ‖ device public key (32 bytes) ‖ template. Key ids never hold NUL and the
/// middle parts have fixed lengths, so the parts cannot be shifted into one another.
pub fn bind_message(
    keyless_id: &str,
    challenge: &[u8],
    device_public_key: &[u8],
    template: &[u8],
) -> Vec<u8> {
    [
        BIND_TAG,
        keyless_id.as_bytes(),
        b"\0",
        challenge,
        device_public_key,
        template,
    ]
    .concat()
}
