//! Prints the liveness (spoof) score of the primary face of each image given, one
//! `path<TAB>score` line each (`-` when no face is found); `scripts/liveness` uses it.

use recognize_agent::vision::liveness::Liveness;
use recognize_agent::vision::{Models, decode, default_models_dir, default_precision};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = default_models_dir();
    let precision = default_precision()?;
    let models = Models::load(&dir, precision)?;
    let check = Liveness::load(&dir, precision)?;
    let opts = decode::DecodeOptions::file(50_000_000);
    for path in std::env::args().skip(1) {
        let image = decode::decode(&std::fs::read(&path)?, &opts)?;
        match models.analyse(&image)?.primary {
            Some(p) => {
                let score = check.score(&image, &p.face)?;
                println!("{path}\t{score:.4}");
            }
            None => println!("{path}\t-"),
        }
    }
    Ok(())
}
