//! What our operators share: convolution geometry, arithmetic for their loops, the CPU
//! check, tract's operator traits.

use tract_nnef::prelude::*;
use tract_nnef::tract_core::ops::cnn::Conv;

use super::Floats;

/// Where a 2-D convolution's outputs read, in (rows, columns) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// A square kernel's geometry with the same stride and dilation on both axes.
    #[cfg(test)]
    pub fn square(
        input_hw: (usize, usize),
        output_hw: (usize, usize),
        (kernel, stride, dilation): (usize, usize, usize),
        pad: (usize, usize),
    ) -> Geometry {
        Geometry {
            input_hw,
            output_hw,
            kernel_hw: (kernel, kernel),
            stride: (stride, stride),
            dilation: (dilation, dilation),
            pad,
        }
    }

    /// Size of a zero-bordered copy of the input inside which every tap of every output
    /// reads.
    pub fn padded_hw(&self) -> (usize, usize) {
        let axis = |pick: fn((usize, usize)) -> usize| {
            let reach = (pick(self.output_hw) - 1) * pick(self.stride)
                + (pick(self.kernel_hw) - 1) * pick(self.dilation)
                + 1;
            (pick(self.input_hw) + pick(self.pad)).max(reach)
        };
        (axis(|p| p.0), axis(|p| p.1))
    }
}

/// A convolution's constant bias as one value per output channel (it may be empty or a
/// single value).
pub fn bias(bias: &Tensor, outputs: usize) -> Option<Vec<f32>> {
    match bias.floats().ok()? {
        [] => Some(vec![0.0; outputs]),
        [b] => Some(vec![*b; outputs]),
        b if b.len() == outputs => Some(b.to_vec()),
        _ => None,
    }
}

/// `values` laid out `[rows][columns]`, rewritten `[columns][rows]`.
pub fn transpose(values: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    (0..rows * columns)
        .map(|n| values[(n % rows) * columns + n / rows])
        .collect()
}

/// Starts of blocks of `block` covering `0..len`: whole blocks, then one ending at `len`
/// if some remain (overlapping the one before, to recompute the same values). `len`
/// must be at least `block`.
pub fn starts(len: usize, block: usize) -> impl Iterator<Item = usize> {
    debug_assert!(len >= block, "{len} is shorter than a block of {block}");
    let tail = (!len.is_multiple_of(block)).then_some(len - block);
    (0..len - block + 1).step_by(block).chain(tail)
}

/// Where an op reads its input from.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A tensor of its own.
    Separate(&'a [f32]),
    /// The output buffer, which then holds the input and is overwritten (the op's input
    /// and output have the same shape). Saves allocating and clearing the output.
    InPlace,
}

impl<'a> Input<'a> {
    /// The input apart from the output `out`, for loops that read inputs after writing
    /// outputs: when in place, a copy of `out` kept in `copy`.
    #[inline(always)]
    pub fn apart(self, out: &[f32], copy: &'a mut Vec<f32>) -> &'a [f32] {
        match self {
            Input::Separate(input) => input,
            Input::InPlace => {
                copy.extend_from_slice(out);
                copy
            }
        }
    }
}

/// Whether this CPU has AVX2 and FMA, which our x86 kernels need.
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether this CPU has AVX-512 (F).
#[cfg(target_arch = "x86_64")]
pub fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
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

/// A new output of `shape`, computed by `run(input, output)`.
pub fn fresh_output(
    shape: &[usize],
    input: &TValue,
    run: impl FnOnce(&[f32], &mut [f32]),
) -> TractResult<Tensor> {
    let mut out = Tensor::zero::<f32>(shape)?;
    run(input.floats()?, out.floats_mut()?);
    Ok(out)
}

/// The output computed by `run(input, output)`: over `input` itself if `in_place` (the
/// op allows it) and no other op reads it, else a new tensor of `shape`. A shared input
/// would first be copied, which is no cheaper than a new output.
pub fn output(
    input: TValue,
    in_place: bool,
    shape: &[usize],
    run: impl FnOnce(Input, &mut [f32]),
) -> TractResult<Tensor> {
    if !in_place || !input.is_exclusive() {
        return fresh_output(shape, &input, |i, o| run(Input::Separate(i), o));
    }
    let mut data = input.into_tensor();
    run(Input::InPlace, data.floats_mut()?);
    Ok(data)
}

/// Implements tract's operator traits for an op of ours with one f32 input and an output
/// of the fixed shape `self.output_shape()`, computed by `self.run(input, output)`. With
/// `in_place`, `run` takes an [`Input`] and the output is [`output`]'s, where
/// `self.in_place()` says the op may overwrite its input.
macro_rules! unary_op {
    ($op:ty, $name:literal) => {
        unary_op!(@impl $op, $name, |op: &$op, input: TValue| {
            super::kernel::fresh_output(&op.output_shape(), &input, |i, o| op.run(i, o))
        });
    };
    ($op:ty, $name:literal, in_place) => {
        unary_op!(@impl $op, $name, |op: &$op, input: TValue| {
            super::kernel::output(input, op.in_place(), &op.output_shape(), |i, o| op.run(i, o))
        });
    };
    (@impl $op:ty, $name:literal, $eval:expr) => {
        super::kernel::finite_eq!($op);

        impl Op for $op {
            fn name(&self) -> StaticName {
                $name.into()
            }

            op_as_typed_op!();
        }

        impl EvalOp for $op {
            op_out_of_plan!();

            fn eval(&self, _: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
                let eval: fn(&$op, TValue) -> TractResult<Tensor> = $eval;
                Ok(tvec!(eval(self, inputs.remove(0))?.into_tvalue()))
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

/// `Eq` for op `$op`, which tract requires of every op: its weights are finite, so its
/// derived `PartialEq` is an equivalence.
macro_rules! finite_eq {
    ($op:ty) => {
        impl Eq for $op {}
    };
}
pub(super) use finite_eq;
