//! Reading tract's typed graph: the nodes our operators replace and what follows them.

use std::sync::Arc;

use tract_nnef::prelude::*;

use super::Floats;
use tract_nnef::tract_core::ops::cnn::Conv;

/// A `Conv` node of f32 input with constant weights and bias, as our ops read it.
pub struct ConstantConv<'m> {
    pub conv: &'m Conv,
    /// The data input and its concrete shape.
    pub x: OutletId,
    pub shape: &'m [usize],
    pub kernel: Arc<Tensor>,
    pub bias: Arc<Tensor>,
}

impl<'m> ConstantConv<'m> {
    /// `node` as such a convolution, if it is one.
    pub fn of(model: &'m TypedModel, node: &'m TypedNode) -> Option<ConstantConv<'m>> {
        let conv = node.op_as::<Conv>()?;
        let [x, kernel, bias] = node.inputs.as_slice() else {
            return None;
        };
        let fact = |outlet: &OutletId| model.outlet_fact(*outlet).ok();
        let x_fact = fact(x)?;
        (x_fact.datum_type == f32::datum_type()).then_some(())?;
        Some(ConstantConv {
            conv,
            x: *x,
            shape: x_fact.shape.as_concrete()?,
            kernel: fact(kernel)?.konst.clone()?,
            bias: fact(bias)?.konst.clone()?,
        })
    }
}

/// The only reader of node `id`'s output, unless that output is a model output.
pub fn sole_reader(model: &TypedModel, id: usize) -> Option<&TypedNode> {
    let outlet = OutletId::new(id, 0);
    match model.outlet_successors(outlet) {
        [one] if !model.output_outlets().ok()?.contains(&outlet) => Some(model.node(one.node)),
        _ => None,
    }
}

/// The reader of node `id` if it is a binary `name`, with its other input.
pub fn binary_reader<'m>(
    model: &'m TypedModel,
    id: usize,
    name: &str,
) -> Option<(&'m TypedNode, OutletId)> {
    let next = sole_reader(model, id)?;
    let from = OutletId::new(id, 0);
    let other = match next.inputs.as_slice() {
        [a, b] if *a == from => *b,
        [a, b] if *b == from => *a,
        _ => return None,
    };
    (next.op().name() == name).then_some((next, other))
}

/// The constant value of `outlet`, as f32.
pub fn constant(model: &TypedModel, outlet: OutletId) -> Option<Vec<f32>> {
    let konst = model.outlet_fact(outlet).ok()?.konst.clone()?;
    Some(konst.floats().ok()?.to_vec())
}

/// Whether `outlet` is a constant of zeros.
pub fn is_zero(model: &TypedModel, outlet: OutletId) -> bool {
    constant(model, outlet).is_some_and(|z| z.iter().all(|v| *v == 0.0))
}

/// The ReLU (`max(·, 0)`) reading node `id`'s output alone, if there is one.
pub fn relu_after(model: &TypedModel, id: usize) -> Option<usize> {
    let (max, zero) = binary_reader(model, id, "Max")?;
    is_zero(model, zero).then_some(max.id)
}
