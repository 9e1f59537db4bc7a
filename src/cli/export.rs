//! `export-models`: the models as NNEF archives, for the board builds.

use std::path::Path;
use std::process::ExitCode;

use recognize_agent::vision::Models;

use super::Error;

/// Writes the models of `from` into `dir` as NNEF archives and prints the files written.
pub(super) fn models(from: &Path, dir: &Path) -> Result<ExitCode, Error> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for path in Models::export(from, dir).map_err(|e| format!("{e:#}"))? {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
