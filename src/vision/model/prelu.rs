//! PReLU in one pass.
//!
//! ONNX exports of MobileFaceNet spell each PReLU as five elementwise operators,
//! `max(x, 0) + α·(x − |x|)`, which tract runs as five passes over memory (a quarter of
//! the embedder's time). [`find`] finds that pattern and swaps it for [`PRelu`]:
//! `x` where positive, `2α·x` otherwise, computed in place.

use std::sync::Arc;

use tract_nnef::prelude::*;
use tract_nnef::tract_core::internal::*;

use super::graph::is_zero;
use super::{Floats, Substitution};

/// PReLU with a constant slope per channel (or one for all), f32.
#[derive(Debug, Clone, PartialEq)]
pub struct PRelu {
    /// Slope for negative inputs, one per channel.
    slope: Arc<Vec<f32>>,
    /// Elements that share one slope, contiguous (the product of the axes after the
    /// channel axis).
    inner: usize,
}

impl PRelu {
    /// Applies the activation to `x` in place.
    fn apply(&self, x: &mut [f32]) {
        // Branch-free, so that the loops vectorise.
        let negative = |v: &mut f32, slope: f32| *v = v.max(0.0) + slope * v.min(0.0);
        if self.inner == 1 {
            // Channels last: the slopes repeat along each pixel.
            for pixel in x.chunks_mut(self.slope.len()) {
                pixel
                    .iter_mut()
                    .zip(self.slope.iter())
                    .for_each(|(v, s)| negative(v, *s));
            }
        } else {
            let channels = self.slope.len();
            for (i, run) in x.chunks_mut(self.inner).enumerate() {
                let slope = self.slope[i % channels];
                run.iter_mut().for_each(|v| negative(v, slope));
            }
        }
    }
}

super::kernel::finite_eq!(PRelu);

impl Op for PRelu {
    fn name(&self) -> StaticName {
        "PReluFast".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PRelu {
    op_out_of_plan!();

    fn eval(&self, _: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        // Owned when this op is the input's only reader, so no copy in the usual case.
        let mut x = inputs.remove(0).into_tensor();
        self.apply(x.floats_mut()?);
        Ok(tvec!(x.into_tvalue()))
    }
}

impl TypedOp for PRelu {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }

    as_op!();
}

/// [`PRelu`] in place of `add` and the nodes before it, if they are
/// `max(x, 0) + α·(x − |x|)`.
pub fn find(model: &TypedModel, add: &TypedNode) -> Option<Substitution> {
    // The node computing input `i` of `node`, if it is a `name`, with its inputs.
    let operand = |node: &TypedNode, i: usize, name: &str| {
        let from = model.node(node.inputs.get(i)?.node);
        (from.op().name() == name).then_some(from.inputs.as_slice())
    };
    if add.op().name() != "Add" || add.inputs.len() != 2 {
        return None;
    }
    let mul = (0..2).find_map(|i| Some((i, operand(add, i, "Mul")?)));
    let (i, [difference, alpha]) = mul? else {
        return None;
    };
    // max(x, 0)
    let &[x, zero] = operand(add, 1 - i, "Max")? else {
        return None;
    };
    // α·(x − |x|), with α constant
    let alpha = model.outlet_fact(*alpha).ok()?.konst.clone()?;
    let sub = model.node(difference.node);
    let (&[minuend, abs], "Sub") = (sub.inputs.as_slice(), sub.op().name().as_ref()) else {
        return None;
    };
    let abs = model.node(abs.node);
    if !is_zero(model, zero) || minuend != x || abs.op().name() != "Abs" || abs.inputs[..] != [x] {
        return None;
    }
    // α varies along at most one axis of x (aligned from the right): the channels.
    let x_fact = model.outlet_fact(x).ok()?;
    let x_shape = x_fact.shape.as_concrete()?;
    if x_fact.datum_type != f32::datum_type() || alpha.rank() > x_shape.len() {
        return None;
    }
    let offset = x_shape.len() - alpha.rank();
    let varying: Vec<usize> = (0..alpha.rank())
        .filter(|&i| alpha.shape()[i] != 1)
        .collect();
    let inner: usize = match varying.as_slice() {
        [] => x_shape.iter().product(),
        [axis] if alpha.shape()[*axis] == x_shape[offset + axis] => {
            x_shape[offset + axis + 1..].iter().product()
        }
        _ => return None,
    };
    // x − |x| is 2x below zero, so the slope is 2α.
    let slope = alpha.floats().ok()?.iter().map(|a| 2.0 * a).collect();
    Some(Substitution {
        last: add.id,
        inputs: tvec![x],
        op: Box::new(PRelu {
            slope: Arc::new(slope),
            inner: inner.max(1),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::kernel::noise;
    use super::*;

    /// Channels first and last: negatives scaled by their channel's slope, the rest kept.
    #[test]
    fn matches_the_definition() {
        let slope = noise(6, 6);
        let input = noise(6 * 20, 7);
        for inner in [1, 20] {
            let op = PRelu {
                slope: Arc::new(slope.clone()),
                inner,
            };
            let mut got = input.clone();
            op.apply(&mut got);
            for (k, (g, v)) in got.iter().zip(&input).enumerate() {
                let channel = if inner == 1 { k % 6 } else { k / inner };
                let want = if *v > 0.0 { *v } else { v * slope[channel] };
                assert!(
                    (g - want).abs() < 1e-7,
                    "inner {inner}, element {k}: {g} not {want}"
                );
            }
        }
    }
}
