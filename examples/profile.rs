//! Time per operator of one model's optimised plan, the mean of 50 runs
//! after 5 warm-up runs. `profile MODEL.onnx SHAPE [--by-node]`, `SHAPE` as `1,256,256,3`;
//! `--by-node` splits each operator by output shape.

use std::collections::BTreeMap;
use std::time::Instant;

use recognize_agent::vision::model;
use tract_nnef::prelude::*;

const RUNS: usize = 50;
const WARM_UP: usize = 5;

fn main() -> TractResult<()> {
    model::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, shape, by_node) = match args.as_slice() {
        [path, shape, rest @ ..] if rest.iter().all(|a| a == "--by-node") => {
            (path, shape, !rest.is_empty())
        }
        _ => {
            return Err(TractError::msg(
                "usage: profile MODEL.onnx SHAPE [--by-node]",
            ));
        }
    };
    let shape: Vec<usize> = shape.split(',').map(str::parse).collect::<Result<_, _>>()?;
    let precision = recognize_agent::vision::default_precision().map_err(TractError::msg)?;
    let plan = model::load(std::path::Path::new(path), &shape, &[], precision)?;
    let plan = plan.runnable();
    let input: TValue = Tensor::zero::<f32>(&shape)?.into();
    let mut state = plan.spawn()?;
    let mut by_op: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for run in 0..WARM_UP + RUNS {
        state.run_plan_with_eval(tvec![input.clone()], |s, st, node, inputs| {
            let t = Instant::now();
            let out = tract_nnef::tract_core::plan::eval(s, st, node, inputs);
            if run >= WARM_UP {
                let mut key = node.op().name().to_string();
                if by_node {
                    key = format!("{key} {:?}", node.outputs[0].fact.shape);
                }
                let e = by_op.entry(key).or_default();
                e.0 += t.elapsed().as_secs_f64() * 1e3 / RUNS as f64;
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
        println!("{op:30} {ms:7.3} ms  {:4} nodes", n / RUNS);
    }
    Ok(())
}
