//! `recover`: a new device proves the enrolled person is present and is bound.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Cli, Error, key_file, models};
use recognize_agent::backend::client::Client;
use recognize_agent::backend::messages::Bound;
use recognize_agent::protect::states::ClientState;
use recognize_agent::recovery::{self, RecoveryError};
use recognize_agent::vision::decode::{self, DecodeOptions};
use recognize_agent::vision::embed::Embedding;

#[derive(clap::Args)]
pub(super) struct RecoverArgs {
    /// Backend base URL
    #[arg(long, env = "AUTH_SERVER_URL")]
    backend: String,
    /// Backend API key
    #[arg(long, env = "AUTH_SERVER_API_KEY", hide_env_values = true)]
    api_key: String,
    /// File holding the clientState string
    #[arg(long)]
    client_state: PathBuf,
    /// This device's own key (created with mode 0600 on first use) [default: device.key
    /// in the state directory]
    #[arg(long, env = "DEVICE_KEY_FILE")]
    device_key: Option<PathBuf>,
    image: PathBuf,
}

fn read_client_state(file: &Path) -> Result<ClientState, Error> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(recovery::client_state(&text).map_err(|e| format!("{}: {e}", file.display()))?)
}

/// The embedding of the one clear face in `image`.
fn face(cli: &Cli, image: &Path) -> Result<Embedding, Error> {
    let body = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let decoded = decode::decode(&body, &DecodeOptions::file(cli.max_pixels))
        .map_err(|e| format!("{}: {e}", image.display()))?;
    let face = models(cli)?
        .analyse(&decoded)?
        .primary
        .ok_or_else(|| format!("{}: no single clear face", image.display()))?;
    Ok(face.embedding)
}

fn recover(cli: &Cli, args: &RecoverArgs) -> Result<Bound, Error> {
    let state = read_client_state(&args.client_state)?;
    let backend = Client::with_ca(
        &args.backend,
        &args.api_key,
        cli.auth_server_ca_file.as_deref(),
    )?;
    let embedding = face(cli, &args.image)?;
    let device = key_file(&args.device_key, "device.key")?;
    Ok(recovery::recover(&state, &embedding, &device, &backend)?)
}

/// Runs [`recover`] and prints its answer: bound (exit 0), refused (1) or an error (2).
pub(super) fn print(cli: &Cli, args: &RecoverArgs) -> Result<ExitCode, Error> {
    let refused = |reason, detail| {
        let json = serde_json::json!({ "bound": false, "reason": reason, "detail": detail });
        (json.to_string(), 1)
    };
    let (json, code) = match recover(cli, args) {
        Ok(bound) => (serde_json::to_string(&bound)?, 0),
        Err(e) => match e.downcast_ref::<RecoveryError>() {
            Some(RecoveryError::NoMatch(detail)) => refused("NO_MATCH", detail),
            Some(RecoveryError::Locked(detail)) => refused("LOCKED", detail),
            _ => (serde_json::json!({ "error": e.to_string() }).to_string(), 2),
        },
    };
    println!("{json}");
    Ok(ExitCode::from(code))
}
