//! The log, human or JSON, levels from `RUST_LOG`.

use super::LogFormat;
use std::io::Write;

pub(super) fn init_logging(format: LogFormat) {
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
