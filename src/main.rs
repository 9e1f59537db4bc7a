//! `recognize-agent`: the agent's command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use rand_chacha::rand_core::SeedableRng;
use recognize_agent::agent::{Agent, Limits, admission::Gate};
#[cfg(feature = "backend")]
use recognize_agent::backend::api::{Backend, Settings};
use recognize_agent::backend::client::Client;
#[cfg(feature = "backend")]
use recognize_agent::backend::store::{Budget, Store};
use recognize_agent::capture::{self, select::Window};
use recognize_agent::contract::Scenario;
use recognize_agent::enroll::{Enroller, LivenessCheck};
use recognize_agent::frames::{self, files::Playback, negotiate::Resolution};
use recognize_agent::http::{Server, front};
use recognize_agent::kiosk;
use recognize_agent::protect::issue::Issuer;
use recognize_agent::protect::keys::KeyFile;
use recognize_agent::protect::seal::{SealingKey, SealingPublicKey};
use recognize_agent::protect::states::{self, ClientType};
use recognize_agent::recovery::{self, RecoveryError};
use recognize_agent::service::{Service, api_key::ApiKey};
use recognize_agent::vision::decode::{self, DecodeOptions};
use recognize_agent::vision::embed::Embedding;
use recognize_agent::vision::liveness::{self, Liveness};
use recognize_agent::vision::{Models, Precision, default_models_dir, default_precision};

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

/// Where frames come from: the camera, or files.
#[derive(clap::Args)]
struct SourceArgs {
    /// The camera: an index (0), a device (/dev/video0) or part of its name
    #[arg(long, env = "CAMERA_DEVICE", default_value = "0")]
    camera: String,
    /// Resolution asked of the camera (the nearest it offers is taken)
    #[arg(long, env = "CAMERA_RESOLUTION", default_value = "640x480")]
    camera_resolution: Resolution,
    /// Frame rate asked of the camera
    #[arg(long, env = "CAMERA_FPS", default_value_t = 30)]
    camera_fps: u32,
    /// Frames from files instead of the camera: an image, a directory of images (in name
    /// order) or an MJPEG stream file (.mjpeg)
    #[arg(long)]
    frames: Option<PathBuf>,
    /// Play --frames at this many frames per second, like a camera [default: as fast as
    /// they are assessed, none dropped]
    #[arg(long, value_parser = parse_rate)]
    frames_fps: Option<f64>,
    /// Frames assessed per second, at most; the others are dropped
    #[arg(long, env = "ANALYSIS_FPS", default_value = "5", value_parser = parse_rate)]
    analysis_fps: f64,
}

impl SourceArgs {
    fn spec(&self, max_pixels: u64, looping: bool) -> Result<frames::Spec, Error> {
        if let Some(path) = &self.frames {
            let playback = Playback {
                fps: self.frames_fps,
                looping,
            };
            return Ok(frames::Spec::Files {
                path: path.clone(),
                playback,
            });
        }
        self.camera_spec(max_pixels)
    }

    #[cfg(feature = "camera")]
    fn camera_spec(&self, max_pixels: u64) -> Result<frames::Spec, Error> {
        Ok(frames::Spec::Camera {
            device: self.camera.parse().map_err(|e| format!("--camera: {e}"))?,
            wanted: frames::negotiate::Wanted {
                resolution: self.camera_resolution,
                fps: self.camera_fps,
                max_pixels,
            },
        })
    }

    #[cfg(not(feature = "camera"))]
    fn camera_spec(&self, _: u64) -> Result<frames::Spec, Error> {
        // The camera settings are still accepted (presets set them for every build).
        let _ = (&self.camera, self.camera_resolution, self.camera_fps);
        Err("this build has no camera support (cargo feature `camera`); use --frames".into())
    }
}

/// A number of seconds, as a duration.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    s.trim()
        .parse()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("'{s}' is not a number of seconds"))
}

/// A positive rate, per second.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("'{s}' is not a positive number per second")),
    }
}

#[derive(clap::Args)]
struct CaptureArgs {
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

#[derive(clap::Args)]
struct RecoverArgs {
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

#[cfg(feature = "backend")]
#[derive(clap::Args)]
struct BackendArgs {
    /// Address to listen on
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    host: String,
    /// Port to listen on (0 picks a free one)
    #[arg(long, env = "PORT", default_value_t = 8090)]
    port: u16,
    /// SQLite database file, created and migrated on start [default: backend.db in the
    /// state directory]
    #[arg(long, env = "DATABASE")]
    database: Option<PathBuf>,
    /// The key every call must carry in X-Api-Key
    #[arg(long, env = "BACKEND_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The key management calls (unlocking a user, deleting a user) carry in X-Api-Key
    /// instead of the API key; unset, they are refused (403)
    #[arg(long, env = "BACKEND_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Identity public keys (base64url, as `recognize-agent identity` prints them) of the
    /// agents whose server states are accepted, comma-separated
    #[arg(
        long,
        env = "TRUSTED_AGENT_KEYS",
        value_delimiter = ',',
        required = true
    )]
    trusted_agent_keys: Vec<String>,
    /// Seconds a recovery challenge stays valid (1 to 86400)
    #[arg(long, env = "CHALLENGE_TTL_SECONDS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    challenge_ttl_seconds: u64,
    /// Target false-match rate of recovery, from 1e-4 to 1e-2: the match threshold is the
    /// impostor score quantile measured for it (docs/biometrics.md, Accuracy)
    #[arg(long, env = "MATCH_TARGET_FMR",
          default_value_t = recognize_agent::backend::matching::DEFAULT_FMR)]
    match_target_fmr: f64,
    /// Refused recovery attempts in a row that need no wait
    #[arg(long, env = "RECOVERY_FREE_ATTEMPTS", default_value_t = Budget::default().free)]
    recovery_free_attempts: u32,
    /// Seconds to wait after the first refusal beyond the free ones, doubling after each
    /// further refusal
    #[arg(long, env = "RECOVERY_BACKOFF_SECONDS",
          default_value_t = Budget::default().backoff_seconds)]
    recovery_backoff_seconds: u64,
    /// Refused attempts in a row that lock a user until `POST /v1/users/{id}/unlock`
    #[arg(long, env = "RECOVERY_LOCK_AFTER", default_value_t = Budget::default().lock_after,
          value_parser = clap::value_parser!(u32).range(1..))]
    recovery_lock_after: u32,
    /// Threads serving requests
    #[arg(long, env = "BACKEND_WORKERS", default_value_t = 4)]
    workers: usize,
    #[command(flatten)]
    front: FrontArgs,
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
    fn settings(&self, max_body_bytes: usize) -> Result<front::Settings, Error> {
        Ok(front::Settings {
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

#[derive(clap::Args)]
struct ServeArgs {
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

fn main() -> ExitCode {
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
        Command::Identity => {
            let json = serde_json::json!({ "publicKey": states::b64(&identity()?.public()) });
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
        Command::SealingKey => {
            let key = sealing_key(&cli)?;
            let json = serde_json::json!({
                "publicKey": states::b64(&key.public().to_bytes()),
                "keyId": states::b64(&key.public().id()),
            });
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(ref args) => serve(args, enroller()?, &cli),
        Command::Capture(ref args) => capture(args, enroller()?, &cli),
        #[cfg(feature = "onnx")]
        Command::ExportModels { ref dir } => {
            let from = models_dir(&cli);
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for path in Models::export(&from, dir).map_err(|e| format!("{e:#}"))? {
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Enroll {
            scenario,
            client_state_type,
            no_exif_transpose,
            ref file,
        } => {
            let enroller = enroller()?;
            let body = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let opts = DecodeOptions {
                exif_transpose: !no_exif_transpose,
                ..DecodeOptions::file(cli.max_pixels)
            };
            let outcome = enroller
                .enroll(&body, scenario, client_state_type, &opts)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let (json, code) = match outcome.into_result() {
                Ok(states) => (serde_json::to_string_pretty(&states)?, 0),
                Err(refused) => (serde_json::to_string_pretty(&refused)?, 2),
            };
            println!("{json}");
            Ok(ExitCode::from(code))
        }
        Command::Recover(ref args) => {
            let refused = |reason, detail| {
                let json =
                    serde_json::json!({ "bound": false, "reason": reason, "detail": detail });
                (json.to_string(), 1)
            };
            let (json, code) = match recover(&cli, args) {
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
        #[cfg(feature = "backend")]
        Command::Backend(ref args) => backend(args, &cli),
        #[cfg(feature = "backend")]
        Command::Audit {
            ref database,
            after,
        } => audit(database, after),
    }
}

/// Prints the audit log after entry `after`, page by page.
#[cfg(feature = "backend")]
fn audit(database: &Option<PathBuf>, mut after: u64) -> Result<ExitCode, Error> {
    let path = state_file(database, "backend.db");
    if !path.exists() {
        return Err(format!("{}: no such database", path.display()).into());
    }
    let store = Store::open(&path).map_err(|e| format!("database {}: {e}", path.display()))?;
    let mut out = std::io::stdout().lock();
    loop {
        let page = store.audit(after, 1000)?;
        for entry in &page {
            writeln!(out, "{}", serde_json::to_string(entry)?)?;
        }
        match page.last() {
            Some(last) => after = last.seq,
            None => return Ok(ExitCode::SUCCESS),
        }
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

fn read_client_state(file: &Path) -> Result<recognize_agent::protect::states::ClientState, Error> {
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

fn recover(
    cli: &Cli,
    args: &RecoverArgs,
) -> Result<recognize_agent::backend::messages::Bound, Error> {
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

fn capture(args: &CaptureArgs, enroller: Enroller, cli: &Cli) -> Result<ExitCode, Error> {
    let max_pixels = cli.max_pixels;
    let backend = match args.online {
        false => None,
        true => Some(
            backend_client(&args.auth_server_url, &args.auth_server_api_key, cli)?
                .ok_or("--online needs AUTH_SERVER_URL and AUTH_SERVER_API_KEY")?,
        ),
    };
    let settings = capture::Settings {
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

fn policies() -> Result<[recognize_agent::vision::filters::Policy; 3], Error> {
    Ok(recognize_agent::config::policies(|k| {
        std::env::var(k).ok()
    })?)
}

fn serve(args: &ServeArgs, enroller: Enroller, cli: &Cli) -> Result<ExitCode, Error> {
    let max_pixels = cli.max_pixels;
    let running = args
        .max_concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let backend = backend_client(&args.auth_server_url, &args.auth_server_api_key, cli)?;
    let enroller = Arc::new(enroller);
    let kiosk = if args.kiosk {
        let settings = kiosk::Settings {
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
    front: front::Settings,
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

#[cfg(feature = "backend")]
fn backend(args: &BackendArgs, cli: &Cli) -> Result<ExitCode, Error> {
    let api_key = ApiKey::new(&args.api_key).ok_or("BACKEND_API_KEY is empty")?;
    let admin_key = match args.admin_key.as_deref() {
        Some("") => {
            return Err(
                "BACKEND_ADMIN_KEY is empty (unset it to turn management calls off)".into(),
            );
        }
        other => other.and_then(ApiKey::new),
    };
    if admin_key.as_ref().is_some_and(|k| k.matches(&args.api_key)) {
        return Err(
            "BACKEND_ADMIN_KEY must differ from BACKEND_API_KEY: devices hold that one".into(),
        );
    }
    let trusted_agents = recognize_agent::backend::api::trusted_agents(&args.trusted_agent_keys)
        .map_err(|e| format!("TRUSTED_AGENT_KEYS: {e}"))?;
    let path = state_file(&args.database, "backend.db");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let store = Store::open(&path).map_err(|e| format!("database {}: {e}", path.display()))?;
    let threshold = recognize_agent::backend::matching::for_fmr(args.match_target_fmr)
        .map_err(|e| format!("MATCH_TARGET_FMR: {e}"))?;
    let budget = Budget {
        free: args.recovery_free_attempts,
        backoff_seconds: args.recovery_backoff_seconds,
        lock_after: args.recovery_lock_after,
    };
    if budget.free >= budget.lock_after {
        log::warn!(
            "RECOVERY_FREE_ATTEMPTS ({}) is not below RECOVERY_LOCK_AFTER ({}): users lock \
             before any wait",
            budget.free,
            budget.lock_after
        );
    }
    if admin_key.is_none() {
        log::warn!("no BACKEND_ADMIN_KEY: unlocking and deleting users are off");
    }
    let store = store.with_budget(budget);
    let sealing = sealing_key(cli)?;
    let settings = Settings {
        api_key,
        admin_key,
        trusted_agents,
        challenge_ttl: std::time::Duration::from_secs(args.challenge_ttl_seconds),
        sealing,
        threshold,
    };
    let what = format!(
        "backend, database {}, sealing key {}, match threshold {threshold:.3} (false-match \
         target {:e})",
        path.display(),
        states::b64(&settings.sealing.public().id()),
        args.match_target_fmr
    );
    let backend = Backend::new(store, settings);
    let front = args
        .front
        .settings(recognize_agent::backend::api::MAX_BODY_BYTES)?;
    listen(&args.host, args.port, backend, args.workers, front, &what)
}

fn init_logging(format: LogFormat) {
    let mut builder = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,tract_linalg=warn"),
    );
    if let LogFormat::Json = format {
        builder.format(|buf, record| {
            let line = serde_json::json!({
                "ts": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "msg": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    builder.init();
}
