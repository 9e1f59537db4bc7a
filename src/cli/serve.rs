//! `serve`: the agent's HTTP API, and the kiosk with `--kiosk`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::source::SourceArgs;
use super::{Cli, Error, FrontArgs, backend_client, listen, parse_seconds};
use recognize_agent::agent::{Agent, Limits, admission::Gate};
use recognize_agent::capture::select::Window;
use recognize_agent::contract::Scenario;
use recognize_agent::enroll::Enroller;
use recognize_agent::kiosk;
use recognize_agent::service::api_key::ApiKey;

#[derive(clap::Args)]
pub(super) struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    host: String,
    /// Port to listen on (0 picks a free one)
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
    /// Enrolments that may run at once [default: number of CPUs]
    #[arg(long, env = "MAX_CONCURRENCY")]
    max_concurrency: Option<usize>,
    /// Enrolments that may wait for a slot; beyond that, 429
    #[arg(long, env = "MAX_WAIT", default_value_t = 1)]
    max_wait: usize,
    /// Largest request body, in bytes
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 20 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Backend base URL for online enrolment (with AUTH_SERVER_API_KEY)
    #[arg(long, env = "AUTH_SERVER_URL")]
    auth_server_url: Option<String>,
    /// Backend API key for online enrolment
    #[arg(long, env = "AUTH_SERVER_API_KEY", hide_env_values = true)]
    auth_server_api_key: Option<String>,
    /// Key the enrolment endpoints require in X-Api-Key (compared in constant time);
    /// unset, they are open to whoever reaches the port
    #[arg(long, env = "AGENT_API_KEY", hide_env_values = true)]
    agent_api_key: Option<String>,
    /// Kiosk mode: serve the enrolment page at /kiosk (to this machine's browser only),
    /// enrolling SELFIE frames from the camera (or --frames, played in a loop); online
    /// when AUTH_SERVER_URL is set
    #[arg(long, env = "KIOSK")]
    kiosk: bool,
    /// Seconds the kiosk keeps the camera on after its page last asked for news
    #[arg(long, env = "KIOSK_IDLE", default_value = "10", value_parser = parse_seconds)]
    kiosk_idle: Duration,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    front: FrontArgs,
}

pub(super) fn serve(args: &ServeArgs, enroller: Enroller, cli: &Cli) -> Result<ExitCode, Error> {
    let max_pixels = cli.max_pixels;
    let running = args
        .max_concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let backend = backend_client(&args.auth_server_url, &args.auth_server_api_key, cli)?;
    let enroller = Arc::new(enroller);
    let kiosk = if args.kiosk {
        let settings = kiosk::KioskSettings {
            source: args.source.spec(max_pixels, true)?,
            rate: args.source.analysis_fps,
            window: Window::default(),
            max_pixels,
            scenario: Scenario::Selfie,
            idle: args.kiosk_idle,
        };
        log::info!(
            "kiosk on /kiosk: {} frames assessed per second at most",
            settings.rate
        );
        Some(kiosk::Kiosk::start(
            settings,
            Arc::clone(&enroller),
            backend.clone(),
        )?)
    } else {
        None
    };
    let api_key = args.agent_api_key.as_deref().and_then(ApiKey::new);
    if api_key.is_none() {
        log::warn!("no AGENT_API_KEY: the enrolment endpoints are open to whoever reaches them");
    }
    let agent = Agent {
        enroller,
        gate: Gate::new(running, args.max_wait),
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            max_pixels,
        },
        backend,
        kiosk,
        api_key,
    };
    // Workers for every admitted enrolment plus spares, so that cheap requests and
    // 429 answers are never stuck behind running enrolments.
    let workers = running + args.max_wait + 4;
    let what = format!("{running} enrolments at once, {} waiting", args.max_wait);
    let front = args.front.settings(args.max_body_bytes)?;
    listen(&args.host, args.port, agent, workers, front, &what)
}
