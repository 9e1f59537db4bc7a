//! Loading ONNX files into optimised tract plans.

use std::path::Path;

use tract_onnx::prelude::*;

use super::depthwise;

/// An optimised, immutable plan; `run` takes `&self`, so one plan serves all threads.
pub type Plan = TypedRunnableModel<TypedModel>;

/// Loads `path` with its single input fixed to `shape` (f32) and optimises it, with the
/// depthwise convolutions on [`depthwise::Depthwise`].
pub fn load(path: &Path, shape: &[usize]) -> TractResult<Plan> {
    let mut model = typed(path, shape)?;
    let replaced = depthwise::replace_depthwise(&mut model)?;
    log::debug!(
        "{}: {replaced} depthwise convolutions on the fast kernel",
        path.display()
    );
    model.into_optimized()?.into_runnable()
}

/// Loads `path` with its single input fixed to `shape`, decluttered, not optimised.
pub fn typed(path: &Path, shape: &[usize]) -> TractResult<TypedModel> {
    tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| e.context(format!("loading model {}", path.display())))?
        .with_input_fact(0, f32::fact(shape).into())?
        .into_typed()?
        .into_decluttered()
}
