//! Prints the liveness (spoof) score of the primary face of each image given, one
//! `path<TAB>score` line each (`-` when no face is found); `scripts/liveness` uses it.
//! `CROP=S` cuts the crop at S times the face box instead of the default.

use recognize_agent::vision::liveness::{self, Liveness};
use recognize_agent::vision::{Models, decode, default_models_dir, default_precision};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = default_models_dir();
    let precision = default_precision()?;
    let models = Models::load(&dir, precision)?;
    let check = Liveness::load(&dir, precision)?;
    let scale = match std::env::var("CROP") {
        Ok(s) => s
            .parse::<f32>()
            .map_err(|_| format!("CROP: not a number: {s}"))?,
        Err(_) => liveness::CROP_SCALE,
    };
    let opts = decode::DecodeOptions::file(50_000_000);
    for path in std::env::args().skip(1) {
        let image = decode::decode(&std::fs::read(&path)?, &opts)?;
        match models.analyse(&image)?.primary {
            Some(p) => {
                let score = check.score_crop(&liveness::crop(&image, &p.face, scale))?;
                println!("{path}\t{score:.4}");
            }
            None => println!("{path}\t-"),
        }
    }
    Ok(())
}
