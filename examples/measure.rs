//! Prints the pipeline's measurements for each image given (a development aid).
//! With `--faces-json IMAGE`, prints the detected faces (boxes and keypoints, no biometric
//! data) as JSON instead: `scripts/fixtures.py` uses it to place synthetic occluders.

use recognize_agent::capture::assess::Quality;
use recognize_agent::vision::{
    Models, align, decode, default_models_dir, default_precision, sharpness,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let models = Models::load(&default_models_dir(), default_precision()?)?;
    let opts = decode::DecodeOptions::file(50_000_000);
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = args.as_slice() {
        if flag != "--faces-json" {
            return Err(format!("unknown option {flag}").into());
        }
        let image = decode::decode(&std::fs::read(path)?, &opts)?;
        let faces = models.detector.detect(&image)?;
        println!(
            "{}",
            serde_json::to_string(&faces.iter().collect::<Vec<_>>())?
        );
        return Ok(());
    }
    // BLUR=SIGMA also measures the sharpness after a Gaussian blur.
    let blur = std::env::var("BLUR")
        .ok()
        .and_then(|s| s.parse::<f32>().ok());
    for path in args {
        let image = decode::decode(&std::fs::read(&path)?, &opts)?;
        let a = models.analyse(&image)?;
        let faces: Vec<String> = a
            .faces
            .iter()
            .map(|f| format!("{:.2}/{:.0}/io{:.0}", f.score, f.size(), f.interocular()))
            .collect();
        print!(
            "{path}: {}x{} colour {:.1} faces [{}]",
            a.width,
            a.height,
            a.colourfulness,
            faces.join(" ")
        );
        if let Some(p) = &a.primary {
            let o = p.occlusion;
            print!(
                " norm {:.1} occluded {:.2} skin {:.2} eyeB {:.2} eyeC {:.2} mouth {:.2} box {:.0},{:.0},{:.0},{:.0}",
                p.embedding.raw_norm,
                o.score,
                o.lower_skin,
                o.eye_brightness,
                o.eye_contrast,
                o.mouth_line,
                p.face.bbox.x0,
                p.face.bbox.y0,
                p.face.bbox.x1,
                p.face.bbox.y1
            );
            let q = Quality::measure(p);
            print!(" sharp {:.3} yaw {:.2}", q.sharpness, q.yaw);
            if let Some(sigma) = blur {
                let blurred = image::imageops::blur(&image, sigma);
                let sharp = sharpness::measure(&align::align(&blurred, &p.face));
                print!(" blurred {sigma}: sharp {sharp:.3}");
            }
        }
        println!();
    }
    Ok(())
}
