//! `capture`: one enrolment from a camera or a folder of frames; the frame sources
//! `serve --kiosk` shares.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::source::SourceArgs;
use super::{Cli, Error, backend_client, parse_client_type, parse_scenario, parse_seconds};
use recognize_agent::capture::{self, select::Window};
use recognize_agent::contract::Scenario;
use recognize_agent::enroll::Enroller;
use recognize_agent::protect::states::ClientType;

#[derive(clap::Args)]
pub(super) struct CaptureArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// SELFIE, TRUSTED_SOURCE or DOCUMENT
    #[arg(long, default_value = "SELFIE", value_parser = parse_scenario)]
    scenario: Scenario,
    /// BACKUP or TEMPORARY: the device type of the client state
    #[arg(long, default_value = "BACKUP", value_parser = parse_client_type)]
    client_state_type: ClientType,
    /// Seconds the best frame is looked for after the first one that can be enrolled
    #[arg(long, default_value = "1.5", value_parser = parse_seconds)]
    settle: Duration,
    /// Seconds after which, with no frame that can be enrolled, capture gives up
    #[arg(long, default_value = "15", value_parser = parse_seconds)]
    give_up: Duration,
    /// Write the JSON to FILE (created with mode 0600) rather than stdout
    #[arg(long)]
    output: Option<PathBuf>,
    /// Register the enrolment on the backend, as /v1/online-enrollment does
    #[arg(long)]
    online: bool,
    /// Backend base URL for --online
    #[arg(long, env = "AUTH_SERVER_URL")]
    auth_server_url: Option<String>,
    /// Backend API key for --online
    #[arg(long, env = "AUTH_SERVER_API_KEY", hide_env_values = true)]
    auth_server_api_key: Option<String>,
    /// Also write the chosen frame to FILE (JPEG if named .jpg or .jpeg, else PNG). Frames are
    /// never written anywhere otherwise.
    #[arg(long)]
    save_frame: Option<PathBuf>,
}

pub(super) fn capture(
    args: &CaptureArgs,
    enroller: Enroller,
    cli: &Cli,
) -> Result<ExitCode, Error> {
    let max_pixels = cli.max_pixels;
    let backend = match args.online {
        false => None,
        true => Some(
            backend_client(&args.auth_server_url, &args.auth_server_api_key, cli)?
                .ok_or("--online needs AUTH_SERVER_URL and AUTH_SERVER_API_KEY")?,
        ),
    };
    let settings = capture::CaptureSettings {
        rate: args.source.analysis_fps,
        window: Window {
            settle: args.settle,
            give_up: args.give_up,
        },
        max_pixels,
    };
    let spec = args.source.spec(max_pixels, false)?;
    let slot = spec.start()?;
    let policy = enroller.policy(args.scenario);
    let mut said = None;
    let chosen = capture::best_frame(&slot, &enroller.models, policy, &settings, |c| {
        let guidance = c.assessment.guidance;
        if said.replace(guidance) != Some(guidance) {
            eprintln!("{}", guidance.message());
        }
    });
    slot.close();
    let chosen = match chosen {
        Ok(chosen) => chosen,
        Err(capture::CaptureError::NoGoodFrame(none)) => {
            let json = serde_json::json!({ "error": none.to_string(), "guidance": none.last });
            write_output(&args.output, &json.to_string())?;
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    log::info!("frame {} chosen (score {:.2})", chosen.seq, chosen.score);
    if let Some(path) = &args.save_frame {
        save_frame(&chosen.image, path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let outcome = enroller
        .enroll_analysis(
            &chosen.image,
            chosen.assessment.analysis,
            args.scenario,
            args.client_state_type,
        )
        .map_err(|e| format!("the chosen frame: {e}"))?;
    let json = match (outcome.into_result(), backend) {
        (Ok(states), None) => serde_json::to_string_pretty(&states)?,
        (Ok(states), Some(backend)) => {
            serde_json::to_string_pretty(&backend.enrol_online(states)?)?
        }
        (Err(refused), _) => {
            write_output(&args.output, &serde_json::to_string_pretty(&refused)?)?;
            return Ok(ExitCode::from(2));
        }
    };
    write_output(&args.output, &json)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a frame as JPEG if `path` says so, else as PNG; only these two encoders are
/// linked.
fn save_frame(image: &image::RgbImage, path: &Path) -> Result<(), Error> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let jpeg = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
    if jpeg {
        image.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(file, 95))?;
    } else {
        image.write_with_encoder(image::codecs::png::PngEncoder::new(file))?;
    }
    Ok(())
}

/// Prints `text`, or writes it to `file` (mode 0600: it holds a client state).
fn write_output(file: &Option<PathBuf>, text: &str) -> Result<(), Error> {
    let Some(path) = file else {
        println!("{text}");
        return Ok(());
    };
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{text}").map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}
