//! `identity` and `sealing-key`: the public keys others need, as JSON.

use std::process::ExitCode;

use recognize_agent::protect::keys::KeyFile;
use recognize_agent::protect::seal::SealingKey;
use recognize_agent::protect::states;

use super::Error;

/// Prints the agent's identity public key, which backends trust.
pub(super) fn identity(key: &KeyFile) -> Result<ExitCode, Error> {
    let json = serde_json::json!({ "publicKey": states::b64(&key.public()) });
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

/// Prints the backend's public sealing key and its id, which agents seal to.
pub(super) fn sealing_key(key: &SealingKey) -> Result<ExitCode, Error> {
    let json = serde_json::json!({
        "publicKey": states::b64(&key.public().to_bytes()),
        "keyId": states::b64(&key.public().id()),
    });
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}
