//! What our operators share: arithmetic for their loops, tract's operator traits.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::Conv;

/// Where a 2-D convolution's outputs read, in (rows, columns) pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub input_hw: (usize, usize),
    pub output_hw: (usize, usize),
    pub kernel_hw: (usize, usize),
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
    /// Padding before the first row and column.
    pub pad: (usize, usize),
}

impl Geometry {
    /// The geometry of `conv` on an input of `input_hw` with a kernel of `kernel_hw`.
    pub fn of(conv: &Conv, input_hw: (usize, usize), kernel_hw: (usize, usize)) -> Geometry {
        let padding = conv.pool_spec.computed_padding(&[input_hw.0, input_hw.1]);
        let (strides, dilations) = (conv.pool_spec.strides(), conv.pool_spec.dilations());
        Geometry {
            input_hw,
            output_hw: (padding[0].convoluted, padding[1].convoluted),
            kernel_hw,
            stride: (strides[0], strides[1]),
            dilation: (dilations[0], dilations[1]),
            pad: (padding[0].pad_before, padding[1].pad_before),
        }
    }

    /// Size of a zero-bordered copy of the input inside which every tap of every output
    /// reads.
    pub fn padded_hw(&self) -> (usize, usize) {
        let side = |i: usize, o: usize, k: usize, s: usize, d: usize, p: usize| {
            (i + p).max((o - 1) * s + (k - 1) * d + 1)
        };
        (
            side(
                self.input_hw.0,
                self.output_hw.0,
                self.kernel_hw.0,
                self.stride.0,
                self.dilation.0,
                self.pad.0,
            ),
            side(
                self.input_hw.1,
                self.output_hw.1,
                self.kernel_hw.1,
                self.stride.1,
                self.dilation.1,
                self.pad.1,
            ),
        )
    }
}

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

/// A convolution's constant bias as one value per output channel (it may be empty or a
/// single value).
pub fn bias(bias: &Tensor, outputs: usize) -> Option<Vec<f32>> {
    match bias.as_slice::<f32>().ok()? {
        [] => Some(vec![0.0; outputs]),
        [b] => Some(vec![*b; outputs]),
        b if b.len() == outputs => Some(b.to_vec()),
        _ => None,
    }
}

/// Whether `f32::mul_add` is one instruction on this target without runtime detection.
pub const NATIVE_FMA: bool = cfg!(any(target_feature = "fma", target_arch = "aarch64"));

/// `a * b + c`, fused when `FMA` (which the caller sets only where it is one instruction).
#[inline(always)]
pub fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `len` reproducible values in [-1, 1) (xorshift), for tests against the definitions.
#[cfg(test)]
pub fn noise(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as f32 / u32::MAX as f32 * 2.0 - 1.0
        })
        .collect()
}

/// Implements tract's operator traits for an op of ours with one f32 input, an output of
/// the fixed shape `self.output_shape()`, computed by `self.run(input, output)`.
macro_rules! unary_op {
    ($op:ty, $name:literal) => {
        impl Op for $op {
            fn name(&self) -> StaticName {
                $name.into()
            }

            op_as_typed_op!();
        }

        impl EvalOp for $op {
            fn is_stateless(&self) -> bool {
                true
            }

            fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
                let mut out = Tensor::zero::<f32>(&self.output_shape())?;
                self.run(inputs[0].as_slice::<f32>()?, out.as_slice_mut::<f32>()?);
                Ok(tvec!(out.into_tvalue()))
            }
        }

        impl TypedOp for $op {
            fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
                Ok(tvec!(f32::fact(&*self.output_shape())))
            }

            as_op!();
        }
    };
}
pub(super) use unary_op;
