//! Prints what the face pipeline computes for each image, one JSON line per image: the
//! detected faces, the six filter outcomes of each scenario and the embedding of the
//! primary face. `scripts/cross` compares these lines between an ARM build under QEMU and
//! the native build, to check that ARM computes the same thing. Run only on the public
//! test photos: the embeddings are printed.

use recognize_agent::contract::Scenario;
use recognize_agent::vision::filters::{Policy, evaluate};
use recognize_agent::vision::{Models, decode, default_models_dir};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let models = Models::load(&default_models_dir())?;
    let opts = decode::DecodeOptions::file(50_000_000);
    for path in std::env::args().skip(1) {
        let image = decode::decode(&std::fs::read(&path)?, &opts)?;
        let analysis = models.analyse(&image)?;
        let faces: Vec<_> = analysis.faces.iter().collect();
        let filters: serde_json::Map<String, serde_json::Value> = Scenario::ALL
            .iter()
            .map(|&s| {
                let f = evaluate(&analysis, &Policy::for_scenario(s));
                (
                    s.as_str().to_string(),
                    serde_json::to_value(f).unwrap_or_default(),
                )
            })
            .collect();
        let line = serde_json::json!({
            "file": path,
            "faces": faces,
            "filters": filters,
            "embedding": analysis.primary.as_ref().map(|p| p.embedding.vector.to_vec()),
        });
        println!("{line}");
    }
    Ok(())
}
