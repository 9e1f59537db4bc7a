//! Prints the faces found in an image as JSON (boxes and keypoints, no biometric data);
//! `scripts/fixtures.py` uses it to place synthetic occluders.

use recognize_agent::vision::{Models, decode, default_models_dir};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let models = Models::load(&default_models_dir())?;
    let opts = decode::DecodeOptions {
        base64: false,
        exif_transpose: true,
        max_pixels: 50_000_000,
    };
    let path = std::env::args().nth(1).ok_or("usage: faces IMAGE")?;
    let image = decode::decode(&std::fs::read(&path)?, &opts)?;
    let faces: Vec<serde_json::Value> = models
        .detector
        .detect(&image)?
        .iter()
        .map(|f| {
            serde_json::json!({
                "score": f.score,
                "box": [f.bbox.x0, f.bbox.y0, f.bbox.x1, f.bbox.y1],
                "keypoints": f.keypoints.iter().map(|p| [p.x, p.y]).collect::<Vec<_>>(),
            })
        })
        .collect();
    println!("{}", serde_json::Value::from(faces));
    Ok(())
}
