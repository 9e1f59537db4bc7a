//! `backend` and `audit`: the reference backend and its audit log.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Cli, Error, FrontArgs, listen, sealing_key, state_file};
use recognize_agent::backend::api::{Backend, BackendSettings};
use recognize_agent::backend::store::{Budget, Store};
use recognize_agent::protect::states;
use recognize_agent::service::api_key::ApiKey;

#[derive(clap::Args)]
pub(super) struct BackendArgs {
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

/// Prints the audit log after entry `after`, page by page.
pub(super) fn audit(database: &Option<PathBuf>, mut after: u64) -> Result<ExitCode, Error> {
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

pub(super) fn backend(args: &BackendArgs, cli: &Cli) -> Result<ExitCode, Error> {
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
    let settings = BackendSettings {
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
