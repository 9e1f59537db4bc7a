//! The command line: its flags and environment, and what each command shares (keys, models,
//! the state directory, serving).

#[cfg(feature = "backend")]
mod backend;
mod capture;
mod enroll;
#[cfg(feature = "onnx")]
mod export;
mod keys;
mod logging;
mod recover;
mod serve;
mod source;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use rand_chacha::rand_core::SeedableRng;
use recognize_agent::backend::client::Client;
use recognize_agent::config;
use recognize_agent::contract::Scenario;
use recognize_agent::enroll::{Enroller, LivenessCheck};
use recognize_agent::http::{Server, front};
use recognize_agent::protect::issue::Issuer;
use recognize_agent::protect::keys::KeyFile;
use recognize_agent::protect::seal::{SealingKey, SealingPublicKey};
use recognize_agent::protect::states::{self, ClientType};
use recognize_agent::service::Service;
use recognize_agent::vision::decode::DecodeOptions;
use recognize_agent::vision::filters::Policy;
use recognize_agent::vision::liveness::{self, Liveness};
use recognize_agent::vision::{Models, Precision, default_models_dir, default_precision};

#[cfg(feature = "backend")]
use backend::{BackendArgs, audit, backend};
use capture::{CaptureArgs, capture};
use logging::init_logging;
use recover::RecoverArgs;
use serve::{ServeArgs, serve};

#[derive(Parser)]
#[command(
    version,
    about = "Enrol people from a face image into privacy-preserving account-recovery states"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Directory holding the models (NAME.nnef.tar, else NAME.onnx) [default: $MODELS_DIR,
    /// else ./models, else the source tree's]
    #[arg(long, global = true)]
    models_dir: Option<PathBuf>,
    /// Arithmetic the models run in: f32, or f16 (as accurate, but 8 to 10× the work with
    /// tract 0.22, even on CPUs with FP16 arithmetic; not yet counted with 0.23)
    /// [default: $MODEL_PRECISION, else f32]
    #[arg(long, global = true)]
    model_precision: Option<Precision>,
    /// Largest image accepted, in pixels (width × height)
    #[arg(long, env = "MAX_PIXELS", default_value_t = 25_000_000, global = true)]
    max_pixels: u64,
    /// Log format: human or json (one JSON object per line); levels via RUST_LOG
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    /// The agent's identity key (32 bytes, created with mode 0600 on first use), which
    /// signs the states [default: identity.key in the state directory: $STATE_DIRECTORY,
    /// else $XDG_STATE_HOME/recognize-agent, else ~/.local/state/recognize-agent]
    #[arg(long, env = "IDENTITY_KEY_FILE", global = true)]
    identity_key: Option<PathBuf>,
    /// The backend's sealing key pair (X25519, created with mode 0600 on first use): the
    /// backend opens server states with it; an agent without BACKEND_SEALING_KEY seals to
    /// its public part, as when agent and backend share a machine [default: sealing.key
    /// in the state directory]
    #[arg(long, env = "SEALING_KEY_FILE", global = true)]
    sealing_key_file: Option<PathBuf>,
    /// The public sealing key (base64url, as `recognize-agent sealing-key` prints it on
    /// the backend's machine) of the backend that server states are sealed to
    #[arg(long, env = "BACKEND_SEALING_KEY", global = true)]
    backend_sealing_key: Option<String>,
    /// Passive liveness for SELFIE enrolments: refuse (422) a face the anti-spoofing model
    /// takes for a photo or a screen. Validated on simulated spoofs only (docs/usage.md, Liveness)
    #[arg(long, env = "LIVENESS", global = true)]
    liveness: bool,
    /// Spoof score (0–1) above which the liveness check refuses a face
    #[arg(long, env = "LIVENESS_THRESHOLD", global = true,
          default_value_t = liveness::DEFAULT_THRESHOLD, value_parser = parse_threshold)]
    liveness_threshold: f32,
    /// PEM certificates an https:// AUTH_SERVER_URL's certificate must chain to
    /// [default: the Mozilla roots]
    #[arg(long, env = "AUTH_SERVER_CA_FILE", global = true)]
    auth_server_ca_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the agent's HTTP API.
    ///
    /// Per-scenario filter overrides come from the environment:
    /// FILTERS_OFF_<SCENARIO> and FILTERS_ON_<SCENARIO> (comma-separated filter names, e.g.
    /// FILTERS_ON_TRUSTED_SOURCE=imageBlackAndWhite) and MIN_INTEROCULAR_<SCENARIO>
    /// (pixels between the eyes), where SCENARIO is SELFIE, TRUSTED_SOURCE or DOCUMENT.
    Serve(ServeArgs),
    /// Enrol one image file and print the endpoint's JSON (exit 0: enrolled, 2: a filter triggered).
    Enroll {
        /// SELFIE, TRUSTED_SOURCE or DOCUMENT
        #[arg(long, value_parser = parse_scenario)]
        scenario: Scenario,
        /// BACKUP or TEMPORARY: the device type of the client state
        #[arg(long, default_value = "BACKUP", value_parser = parse_client_type)]
        client_state_type: ClientType,
        /// Do not apply the EXIF orientation
        #[arg(long)]
        no_exif_transpose: bool,
        file: PathBuf,
    },
    /// Enrol from a camera (or --frames): frames are assessed at a bounded rate, the best
    /// over a short window is enrolled, and the endpoint's JSON printed (or written to
    /// --output). Advice for the person goes to stderr. Exit 0: enrolled, 2: no frame
    /// could be enrolled in time (prints {"error", "guidance"}), 1: error.
    Capture(CaptureArgs),
    /// Print the agent's identity public key (base64url), which backends trust.
    Identity,
    /// Print the backend's public sealing key and its id (base64url), which agents seal
    /// server states to (BACKEND_SEALING_KEY); creates the key pair on first use.
    SealingKey,
    /// On a new device: protect the face in IMAGE with the client state's secret, send it
    /// to the backend with a fresh challenge, and bind this device (its own key pair) as
    /// an SDK device if the backend finds the enrolled person. Prints {"keylessId",
    /// "deviceId", "type"}; exit 0: bound; 1: refused, {"bound": false, "reason":
    /// "NO_MATCH" or "LOCKED", "detail"}; 2: error (bad state, no face, backend).
    Recover(RecoverArgs),
    /// Serve the reference backend: registers users from trusted agents' server states
    /// sealed to it, binds devices whose face matches the enrolled person's, lists and
    /// deletes devices and users.
    #[cfg(feature = "backend")]
    Backend(BackendArgs),
    /// Print the backend's audit log, one JSON object per line: {"seq", "at" (Unix
    /// seconds), "event" (REGISTERED, COMMITTED, DEVICE_BOUND, BINDING_REFUSED,
    /// DEVICE_DELETED, LOCKED, UNLOCKED, USER_DELETED), "keylessId", "deviceId"}. Ids
    /// and times only.
    #[cfg(feature = "backend")]
    Audit {
        /// The backend's database [default: backend.db in the state directory]
        #[arg(long, env = "DATABASE")]
        database: Option<PathBuf>,
        /// Only the entries after this sequence number
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Write the models as NNEF archives into DIR, for builds without ONNX support (the
    /// board builds, smaller without the ONNX code). Prints the files written.
    #[cfg(feature = "onnx")]
    ExportModels { dir: PathBuf },
}

/// A number of seconds, as a duration.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    s.trim()
        .parse()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("'{s}' is not a number of seconds"))
}

/// What one client may take of a server; the same for the agent and the backend.
#[derive(clap::Args)]
struct FrontArgs {
    /// Connections open at once; beyond that, 503
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 64)]
    max_connections: usize,
    /// Seconds from a connection to the end of its request headers (TLS handshake
    /// included); later, 408
    #[arg(long, env = "HEAD_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    head_timeout: Duration,
    /// Seconds from the end of the headers to the end of the body; later, 408
    #[arg(long, env = "BODY_TIMEOUT", default_value = "60", value_parser = parse_seconds)]
    body_timeout: Duration,
    /// PEM certificate chain: serve HTTPS (with TLS_KEY_FILE)
    #[cfg(feature = "tls")]
    #[arg(long, env = "TLS_CERT_FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of TLS_CERT_FILE
    #[cfg(feature = "tls")]
    #[arg(long, env = "TLS_KEY_FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
}

impl FrontArgs {
    fn settings(&self, max_body_bytes: usize) -> Result<front::FrontSettings, Error> {
        Ok(front::FrontSettings {
            max_connections: self.max_connections.max(1),
            max_body_bytes,
            head_timeout: self.head_timeout,
            body_timeout: self.body_timeout,
            #[cfg(feature = "tls")]
            tls: match (&self.tls_cert_file, &self.tls_key_file) {
                (Some(cert), Some(key)) => Some(front::tls::config(cert, key)?),
                _ => None,
            },
        })
    }
}

fn parse_threshold(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!("'{s}' is not a score between 0 and 1")),
    }
}

fn parse_client_type(s: &str) -> Result<ClientType, String> {
    ClientType::parse(s).ok_or_else(|| "use BACKUP or TEMPORARY".into())
}

/// `configured`, else `name` in the state directory: `$STATE_DIRECTORY` (systemd), else
/// `$XDG_STATE_HOME/recognize-agent`, else `~/.local/state/recognize-agent`.
fn state_file(configured: &Option<PathBuf>, name: &str) -> PathBuf {
    if let Some(path) = configured {
        return path.clone();
    }
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("STATE_DIRECTORY")
        .or_else(|| var("XDG_STATE_HOME").map(|d| d.join("recognize-agent")))
        .or_else(|| var("HOME").map(|h| h.join(".local/state/recognize-agent")))
        .unwrap_or_default()
        .join(name)
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    Scenario::parse(s).ok_or_else(|| "use SELFIE, TRUSTED_SOURCE or DOCUMENT".into())
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    recognize_agent::vision::model::keep_freed_memory();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let identity = || key_file(&cli.identity_key, "identity.key");
    let enroller = || -> Result<Enroller, Error> {
        let issuer = Issuer::new(identity()?, sealed_to(&cli)?);
        let enroller = Enroller::new(models(&cli)?, policies()?, issuer);
        Ok(match liveness(&cli)? {
            Some(check) => enroller.with_liveness(check),
            None => enroller,
        })
    };
    match cli.command {
        Command::Identity => keys::identity(&identity()?),
        Command::SealingKey => keys::sealing_key(&sealing_key(&cli)?),
        Command::Serve(ref args) => serve(args, enroller()?, &cli),
        Command::Capture(ref args) => capture(args, enroller()?, &cli),
        #[cfg(feature = "onnx")]
        Command::ExportModels { ref dir } => export::models(&models_dir(&cli), dir),
        Command::Enroll {
            scenario,
            client_state_type,
            no_exif_transpose,
            ref file,
        } => {
            let opts = DecodeOptions {
                exif_transpose: !no_exif_transpose,
                ..DecodeOptions::file(cli.max_pixels)
            };
            enroll::file(&enroller()?, file, scenario, client_state_type, &opts)
        }
        Command::Recover(ref args) => recover::print(&cli, args),
        #[cfg(feature = "backend")]
        Command::Backend(ref args) => backend(args, &cli),
        #[cfg(feature = "backend")]
        Command::Audit {
            ref database,
            after,
        } => audit(database, after),
    }
}

/// The key pair kept in [`state_file`]`(configured, name)`, created on first use.
fn key_file(configured: &Option<PathBuf>, name: &str) -> Result<KeyFile, Error> {
    let path = state_file(configured, name);
    Ok(KeyFile::load_or_create(&path).map_err(|e| format!("key {}: {e}", path.display()))?)
}

/// The backend's sealing key pair, from [`state_file`]`(SEALING_KEY_FILE, "sealing.key")`.
fn sealing_key(cli: &Cli) -> Result<SealingKey, Error> {
    let path = state_file(&cli.sealing_key_file, "sealing.key");
    Ok(SealingKey::load_or_create(&path)
        .map_err(|e| format!("sealing key {}: {e}", path.display()))?)
}

/// The backend key an agent seals to: BACKEND_SEALING_KEY, else the public part of the
/// local sealing key pair (agent and backend on one machine, the embedded default). Says
/// which at start.
fn sealed_to(cli: &Cli) -> Result<SealingPublicKey, Error> {
    let Some(text) = cli
        .backend_sealing_key
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        let path = state_file(&cli.sealing_key_file, "sealing.key");
        let key = sealing_key(cli)?.public().clone();
        log::info!(
            "server states are sealed to backend key {} (the key pair in {}): only a backend \
             reading that file registers them; set BACKEND_SEALING_KEY to another backend's key",
            states::b64(&key.id()),
            path.display()
        );
        return Ok(key);
    };
    let bytes = states::bytes(text, "BACKEND_SEALING_KEY")
        .map_err(|_| "BACKEND_SEALING_KEY: not a usable X25519 public key: not base64url")?;
    let key = SealingPublicKey::from_bytes(&bytes).ok_or_else(|| {
        format!(
            "BACKEND_SEALING_KEY: not a usable X25519 public key: {} bytes, not 32",
            bytes.len()
        )
    })?;
    // A low-order point takes any box but no one can open it: refuse it now (the test box
    // is thrown away, so a fixed seed will do).
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([0; 32]);
    key.seal(b"", b"", &mut rng).map_err(|_| {
        "BACKEND_SEALING_KEY: not a usable X25519 public key: a low-order point, which no \
         backend can open boxes for"
    })?;
    log::info!(
        "server states are sealed to backend key {} (BACKEND_SEALING_KEY)",
        states::b64(&key.id())
    );
    Ok(key)
}

/// `--models-dir`, else where the library looks by default (`$MODELS_DIR` first).
fn models_dir(cli: &Cli) -> PathBuf {
    cli.models_dir.clone().unwrap_or_else(default_models_dir)
}

fn models(cli: &Cli) -> Result<Models, Error> {
    load(cli, "models", Models::load)
}

/// The liveness check, when it is on.
fn liveness(cli: &Cli) -> Result<Option<LivenessCheck>, Error> {
    if !cli.liveness {
        return Ok(None);
    }
    let model = load(cli, "the liveness model", Liveness::load)?;
    let threshold = cli.liveness_threshold;
    log::info!("liveness check on for SELFIE: spoof score threshold {threshold}");
    Ok(Some(LivenessCheck { model, threshold }))
}

/// Loads `what` from the models directory in the configured precision, and logs how long
/// it took.
fn load<T>(
    cli: &Cli,
    what: &str,
    load: impl FnOnce(&Path, Precision) -> tract_nnef::prelude::TractResult<T>,
) -> Result<T, Error> {
    let started = Instant::now();
    let dir = models_dir(cli);
    let precision = cli.model_precision.map_or_else(default_precision, Ok)?;
    let loaded = load(&dir, precision)
        .map_err(|e| format!("loading {what} from {}: {e:#}", dir.display()))?;
    log::info!(
        "{what} loaded from {} ({precision}) in {:.0} ms",
        dir.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(loaded)
}

fn policies() -> Result<[Policy; 3], Error> {
    Ok(config::policies(|k| std::env::var(k).ok())?)
}

/// The backend online enrolments go to, when both its URL and key are set.
fn backend_client(
    url: &Option<String>,
    api_key: &Option<String>,
    cli: &Cli,
) -> Result<Option<Client>, Error> {
    match (url.as_deref(), api_key.as_deref()) {
        (Some(url), Some(api_key)) if !url.is_empty() && !api_key.is_empty() => Ok(Some(
            Client::with_ca(url, api_key, cli.auth_server_ca_file.as_deref())
                .map_err(|e| format!("AUTH_SERVER_URL: {e}"))?,
        )),
        _ => Ok(None),
    }
}

/// Serves `service` on `host:port` until SIGTERM or SIGINT; prints `listening on ADDR`
/// (the port chosen, if 0 was asked) once it accepts connections.
fn listen<S: Service>(
    host: &str,
    port: u16,
    service: S,
    workers: usize,
    front: front::FrontSettings,
    what: &str,
) -> Result<ExitCode, Error> {
    let stop = recognize_agent::http::stop_on_signals();
    let server = Server::bind(&format!("{host}:{port}"), service, workers, front)?;
    let addr = server.local_addr().ok_or("the server has no IP address")?;
    log::info!("listening on {addr} ({what})");
    println!("listening on {addr}");
    std::io::stdout().flush()?;
    server.run(stop);
    log::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
