//! Per-operator time of one model's optimised plan: `profile MODEL.onnx N,C,H,W`.

use std::collections::BTreeMap;
use std::time::Instant;

use recognize_agent::vision::model;
use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    model::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let shape: Vec<usize> = args[2].split(',').map(|s| s.parse().unwrap()).collect();
    let plan = model::load(std::path::Path::new(&args[1]), &shape)?;
    let input: TValue = Tensor::zero::<f32>(&shape)?.into();
    let mut state = SimpleState::new(&plan)?;
    let mut by_op: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let runs = 50;
    for run in 0..runs + 5 {
        state.run_plan_with_eval(tvec![input.clone()], |s, st, node, inputs| {
            let t = Instant::now();
            let out = tract_onnx::tract_core::plan::eval(s, st, node, inputs);
            if run >= 5 {
                let key = if std::env::var("BY_NODE").is_ok() {
                    format!("{} {:?}", node.op().name(), node.outputs[0].fact.shape)
                } else {
                    node.op().name().to_string()
                };
                let e = by_op.entry(key).or_default();
                e.0 += t.elapsed().as_secs_f64() * 1e3 / runs as f64;
                e.1 += 1;
            }
            out
        })?;
    }
    let mut rows: Vec<_> = by_op.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    let total: f64 = rows.iter().map(|r| r.1.0).sum();
    println!("total {total:.2} ms");
    for (op, (ms, n)) in rows {
        println!("{op:30} {ms:7.3} ms  {:4} nodes", n / runs);
    }
    Ok(())
}
