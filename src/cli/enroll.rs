//! `enroll`: one image file enrolled, the endpoint's JSON printed.

use std::path::Path;
use std::process::ExitCode;

use recognize_agent::contract::Scenario;
use recognize_agent::enroll::Enroller;
use recognize_agent::protect::states::ClientType;
use recognize_agent::vision::decode::DecodeOptions;

use super::Error;

/// Enrols `file` and prints the states (exit 0) or the filters that triggered (exit 2).
pub(super) fn file(
    enroller: &Enroller,
    file: &Path,
    scenario: Scenario,
    client_type: ClientType,
    opts: &DecodeOptions,
) -> Result<ExitCode, Error> {
    let body = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let outcome = enroller
        .enroll(&body, scenario, client_type, opts)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let (json, code) = match outcome.into_result() {
        Ok(states) => (serde_json::to_string_pretty(&states)?, 0),
        Err(refused) => (serde_json::to_string_pretty(&refused)?, 2),
    };
    println!("{json}");
    Ok(ExitCode::from(code))
}
