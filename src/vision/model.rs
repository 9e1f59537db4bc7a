//! Loading ONNX files into optimised tract plans.

use std::path::Path;

use tract_onnx::prelude::*;

/// An optimised, immutable plan; `run` takes `&self`, so one plan serves all threads.
pub type Plan = TypedRunnableModel<TypedModel>;

/// Loads `path` with its single input fixed to `shape` (f32) and optimises it.
pub fn load(path: &Path, shape: &[usize]) -> TractResult<Plan> {
    tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| e.context(format!("loading model {}", path.display())))?
        .with_input_fact(0, f32::fact(shape).into())?
        .into_optimized()?
        .into_runnable()
}
