//! Prints what the face pipeline computes for each image, one JSON line per image: the
//! detected faces, the six filter outcomes of each scenario and the embedding of the
//! primary face. `scripts/cross` compares these lines between an ARM build under QEMU and
//! the native build, to check that ARM computes the same thing; `scripts/variants`
//! compares the model variants with them. Run only on the public test photos: the
//! embeddings are printed, and `--aligned DIR` writes each primary face as the embedder
//! sees it (112×112 PNG, numbered in input order), to calibrate quantised models;
//! `--liveness` adds the liveness model's spoof score of the primary face.
//! `outputs [--aligned DIR] [--liveness] IMAGE...`

use recognize_agent::contract::Scenario;
use recognize_agent::vision::filters::{Policy, evaluate};
use recognize_agent::vision::liveness::Liveness;
use recognize_agent::vision::{Models, align, decode, default_models_dir, default_precision};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, precision) = (default_models_dir(), default_precision()?);
    let models = Models::load(&dir, precision)?;
    let opts = decode::DecodeOptions::file(50_000_000);
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let aligned = if args.len() > 1 && args[0] == "--aligned" {
        let dir = args.remove(1);
        args.remove(0);
        Some(dir)
    } else {
        None
    };
    let liveness = if args.first().is_some_and(|a| a == "--liveness") {
        args.remove(0);
        Some(Liveness::load(&dir, precision)?)
    } else {
        None
    };
    for (i, path) in args.iter().enumerate() {
        let image = decode::decode(&std::fs::read(path)?, &opts)?;
        let analysis = models.analyse(&image)?;
        if let (Some(dir), Some(primary)) = (&aligned, &analysis.primary) {
            align::align(&image, &primary.face).save(format!("{dir}/{i:03}.png"))?;
        }
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
        let mut line = serde_json::json!({
            "file": path,
            "faces": faces,
            "filters": filters,
            "embedding": analysis.primary.as_ref().map(|p| p.embedding.vector.to_vec()),
        });
        if let Some(check) = &liveness {
            line["liveness"] = match &analysis.primary {
                Some(p) => check.score(&image, &p.face)?.into(),
                None => serde_json::Value::Null,
            };
        }
        println!("{line}");
    }
    Ok(())
}
