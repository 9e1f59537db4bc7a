//! A fast pointwise (1×1) convolution for channels-first tensors, with its bias, residual
//! sum and ReLU fused.
//!
//! tract lowers a 1×1 convolution to a matrix product that first repacks the input and
//! picks its kernel for large matrices; BlazeFace's are small on the channel side (24 to
//! 96) and long on the pixel side (up to 16 384), where that costs more than half of the
//! detector's time. [`Pointwise`] reads the channels-first input where it lies: for a
//! block of pixels and of output channels, every input channel is accumulated in
//! registers, then the bias, the residual and the ReLU are applied before one store.
//! AVX-512, AVX2 or plain Rust, whichever the CPU (and compiler) has; the output
//! overwrites the input when no other op reads it.

use std::sync::Arc;

use tract_nnef::prelude::*;
use tract_nnef::tract_core::internal::*;
use tract_nnef::tract_core::ops::einsum::EinSum;

use super::graph::{binary_reader, constant, relu_after};
use super::kernel::{self, Input, madd};
use super::{Floats, Substitution};

/// Output channels computed together (AVX-512: [`avx512::ROWS`]).
const ROWS: usize = 4;
/// Pixels computed together (three AVX2 registers, six NEON ones, per output channel;
/// AVX-512: [`avx512::COLUMNS`]).
const COLUMNS: usize = 24;
/// Floats of input copied together: a tile of pixels of every input channel fits in L1.
const TILE_FLOATS: usize = 8 * 1024;

/// `out[o][p] = max?(bias[o] + residual?[o][p] + Σᵢ weights[o][i]·x[i][p], 0)`, f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Pointwise {
    inputs: usize,
    outputs: usize,
    /// The weights, `[i][o]`.
    transposed: Arc<Vec<f32>>,
    bias: Arc<Vec<f32>>,
    /// A second input of the output's shape is added.
    residual: bool,
    relu: bool,
    /// The output shape: `[(1,) outputs, H, W]`.
    shape: TVec<usize>,
}

impl Pointwise {
    fn pixels(&self) -> usize {
        self.shape[self.shape.len() - 2..].iter().product()
    }

    /// Whether the output may overwrite the input `x` (as many outputs as inputs).
    fn in_place(&self) -> bool {
        self.inputs == self.outputs
    }

    /// Runs the convolution, with AVX-512 or else AVX2 and FMA where the CPU has them.
    fn run(&self, x: Input, residual: Option<&[f32]>, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if kernel::avx512() {
                // SAFETY: the CPU supports AVX-512, checked just above.
                unsafe { avx512::run(self, x, residual, out) };
                return;
            }
            if kernel::avx2_fma() {
                // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                unsafe { self.run_avx2_fma(x, residual, out) };
                return;
            }
        }
        self.run_with::<Portable<{ kernel::NATIVE_FMA }>, ROWS, COLUMNS>(x, residual, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2_fma(&self, x: Input, residual: Option<&[f32]>, out: &mut [f32]) {
        self.run_with::<Avx2, ROWS, COLUMNS>(x, residual, out);
    }

    /// Tiles of pixels whose inputs are first copied together (input channels lie a whole
    /// plane apart, a power of two for most tensors, where caches alias them), then blocks
    /// of `R` × `C` outputs. Tiles do not overlap (a short remainder joins
    /// the last tile), so an output overwrites inputs already copied; inside a tile, the
    /// last block along each axis ends at the edge and may overlap the one before
    /// (recomputing the same values), so only tensors smaller than a block take the
    /// narrow paths.
    #[inline(always)]
    fn run_with<K: Block, const R: usize, const C: usize>(
        &self,
        x: Input,
        residual: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let pixels = self.pixels();
        if pixels < C {
            let mut copy = Vec::new();
            let x = x.apart(out, &mut copy);
            for p in 0..pixels {
                for o in 0..self.outputs {
                    let to = Target {
                        out: &mut *out,
                        residual,
                        o,
                        p,
                    };
                    self.block::<K, 1, 1>((x, pixels, p), to);
                }
            }
            return;
        }
        let tile = ((TILE_FLOATS / self.inputs / C).max(1) * C).min(pixels);
        let mut packed = vec![0.0f32; self.inputs * (tile + C)];
        let mut start = 0;
        while start < pixels {
            let mut len = tile.min(pixels - start);
            if pixels - start - len < C {
                len = pixels - start;
            }
            let source = match x {
                Input::Separate(x) => x,
                Input::InPlace => out,
            };
            for (i, row) in packed.chunks_exact_mut(len).take(self.inputs).enumerate() {
                row.copy_from_slice(&source[i * pixels + start..][..len]);
            }
            for p in kernel::starts(len, C) {
                let x = (&packed[..], len, p);
                if self.outputs >= R {
                    for o in kernel::starts(self.outputs, R) {
                        let to = Target {
                            out: &mut *out,
                            residual,
                            o,
                            p: start + p,
                        };
                        self.block::<K, R, C>(x, to);
                    }
                } else {
                    for o in 0..self.outputs {
                        let to = Target {
                            out: &mut *out,
                            residual,
                            o,
                            p: start + p,
                        };
                        self.block::<K, 1, C>(x, to);
                    }
                }
            }
            start += len;
        }
    }

    /// The block of `R` × `C` outputs `to` names, by `K`; `x` is the input (values, row
    /// length, column of pixel `to.p` in it).
    #[inline(always)]
    fn block<K: Block, const R: usize, const C: usize>(
        &self,
        x: (&[f32], usize, usize),
        to: Target,
    ) {
        // SAFETY: `K` is only chosen where the CPU has its instructions.
        unsafe { K::block::<R, C>(self, x, to) };
    }
}

/// Where a block of outputs goes: outputs `[o, o + R) × [p, p + C)` of `out`, with the
/// same outputs of `residual` added.
struct Target<'a> {
    out: &'a mut [f32],
    residual: Option<&'a [f32]>,
    o: usize,
    p: usize,
}

/// How a path computes a block of `R` × `C` outputs, as [`Portable`] defines it.
trait Block {
    /// # Safety
    /// The CPU must have the instructions the implementation names.
    unsafe fn block<const R: usize, const C: usize>(
        op: &Pointwise,
        x: (&[f32], usize, usize),
        to: Target,
    );
}

/// Plain Rust, with fused multiply-adds when `FMA`.
struct Portable<const FMA: bool>;

impl<const FMA: bool> Block for Portable<FMA> {
    #[inline(always)]
    unsafe fn block<const R: usize, const C: usize>(
        op: &Pointwise,
        (x, stride, column): (&[f32], usize, usize),
        Target {
            out,
            residual,
            o,
            p,
        }: Target,
    ) {
        let mut acc = [[0.0f32; C]; R];
        for i in 0..op.inputs {
            let xs = &x[i * stride + column..][..C];
            let ws = &op.transposed[i * op.outputs + o..][..R];
            for (row, w) in acc.iter_mut().zip(ws) {
                for (a, v) in row.iter_mut().zip(xs) {
                    *a = madd::<FMA>(*w, *v, *a);
                }
            }
        }
        let pixels = op.pixels();
        for (r, sums) in acc.iter_mut().enumerate() {
            let bias = op.bias[o + r];
            sums.iter_mut().for_each(|s| *s += bias);
            if let Some(residual) = residual {
                let res = &residual[(o + r) * pixels + p..][..C];
                sums.iter_mut().zip(res).for_each(|(s, v)| *s += v);
            }
            if op.relu {
                sums.iter_mut().for_each(|s| *s = s.max(0.0));
            }
            out[(o + r) * pixels + p..][..C].copy_from_slice(sums);
        }
    }
}

/// Defines the kernel `$kernel`: blocks `$columns` wide computed by `$name::<R>` in
/// registers of `$lanes` floats (`$vector`, with its zero, load, splat, fused
/// multiply-add, add, max and store intrinsics), narrower blocks in plain Rust with fused
/// multiply-adds. `$gate` applies to every item, `$attr` to `$name`.
macro_rules! simd_kernel {
    ($(#[$gate:meta])* kernel $kernel:ident: $doc:literal;
     $(#[$attr:meta])* fn $name:ident, $columns:expr, $vector:ident, $lanes:literal,
     $zero:ident, $load:ident, $splat:ident, $fma:ident, $add:ident, $max:ident,
     $store:ident) => {
        #[doc = $doc]
        $(#[$gate])*
        struct $kernel;

        $(#[$gate])*
        impl Block for $kernel {
            #[inline(always)]
            unsafe fn block<const R: usize, const C: usize>(
                op: &Pointwise,
                x: (&[f32], usize, usize),
                to: Target,
            ) {
                // SAFETY (both): the caller checked that the CPU has the instructions,
                // fused multiply-adds among them.
                if C == $columns {
                    unsafe { $name::<R>(op, x, to) };
                } else {
                    unsafe { Portable::<true>::block::<R, C>(op, x, to) };
                }
            }
        }

        /// [`Portable`]'s block for `R` × `$columns` outputs, summed, biased, added to the
        /// residual and clamped in registers.
        ///
        /// # Safety
        /// The CPU must have the instructions of the kernel.
        $(#[$gate])*
        $(#[$attr])*
        unsafe fn $name<const R: usize>(
            op: &Pointwise,
            (x, stride, column): (&[f32], usize, usize),
            Target { out, residual, o, p }: Target,
        ) {
            use std::arch::x86_64::*;
            const REGS: usize = $columns / $lanes;
            let (transposed, outputs) = (&op.transposed[..], op.outputs);
            let inputs = transposed.len() / outputs;
            let mut sums = [[$zero(); REGS]; R];
            for i in 0..inputs {
                let xs = &x[i * stride + column..][..$columns];
                // SAFETY: each load reads `$lanes` floats inside `xs`.
                let v: [$vector; REGS] =
                    std::array::from_fn(|k| unsafe { $load(xs[k * $lanes..][..$lanes].as_ptr()) });
                let ws = &transposed[i * outputs + o..][..R];
                for (row, w) in sums.iter_mut().zip(ws) {
                    let w = $splat(*w);
                    for (s, v) in row.iter_mut().zip(&v) {
                        *s = $fma(w, *v, *s);
                    }
                }
            }
            // Short loops of known length, unrolled, so that `sums` stays in registers.
            let pixels = op.pixels();
            for (r, row) in sums.iter_mut().enumerate() {
                let bias = $splat(op.bias[o + r]);
                row.iter_mut().for_each(|s| *s = $add(*s, bias));
            }
            if let Some(residual) = residual {
                for (r, row) in sums.iter_mut().enumerate() {
                    let res = &residual[(o + r) * pixels + p..][..$columns];
                    for (s, v) in row.iter_mut().zip(res.chunks_exact($lanes)) {
                        // SAFETY: the load reads `$lanes` floats inside `res`.
                        *s = $add(*s, unsafe { $load(v.as_ptr()) });
                    }
                }
            }
            if op.relu {
                sums.iter_mut().flatten().for_each(|s| *s = $max(*s, $zero()));
            }
            for (r, row) in sums.iter().enumerate() {
                let dst = &mut out[(o + r) * pixels + p..][..$columns];
                for (s, d) in row.iter().zip(dst.chunks_exact_mut($lanes)) {
                    // SAFETY: `d` holds `$lanes` floats.
                    unsafe { $store(d.as_mut_ptr(), *s) };
                }
            }
        }
    };
}

simd_kernel!(
    #[cfg(target_arch = "x86_64")]
    kernel Avx2: "AVX2 and FMA.";
    #[target_feature(enable = "avx2,fma")]
    fn block_avx2, COLUMNS, __m256, 8,
    _mm256_setzero_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
    _mm256_max_ps, _mm256_storeu_ps
);

/// AVX-512: twice the AVX2 work per instruction.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::*;

    /// Output channels computed together: 24 of the 32 registers accumulate.
    pub const ROWS: usize = 8;
    /// Pixels computed together: three registers per output channel.
    pub const COLUMNS: usize = 48;

    /// Runs `op` with AVX-512.
    ///
    /// # Safety
    /// The CPU must support AVX-512 (F), as [`kernel::avx512`] checks.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn run(op: &Pointwise, x: Input, residual: Option<&[f32]>, out: &mut [f32]) {
        op.run_with::<Avx512, ROWS, COLUMNS>(x, residual, out);
    }

    simd_kernel!(
        kernel Avx512: "AVX-512 (F).";
        #[target_feature(enable = "avx512f")]
        fn block_avx512, COLUMNS, __m512, 16,
        _mm512_setzero_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
        _mm512_max_ps, _mm512_storeu_ps
    );
}

kernel::finite_eq!(Pointwise);

impl Op for Pointwise {
    fn name(&self) -> StaticName {
        "PointwiseFast".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Pointwise {
    op_out_of_plan!();

    fn eval(&self, _: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs.remove(0);
        let residual = match inputs.first() {
            Some(r) => Some(r.floats()?),
            None => None,
        };
        let out = kernel::output(x, self.in_place(), &self.shape, |x, out| {
            self.run(x, residual, out)
        })?;
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Pointwise {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*self.shape)))
    }

    as_op!();
}

/// [`Pointwise`] in place of `node` and the bias, residual sum and ReLU that follow it,
/// if `node` is a channels-first 1×1 convolution spelt as an `EinSum` with constant
/// weights.
/// Whether einsum `axes` is a 1×1 convolution of a channels-first input,
/// `[n]ihw,oi->[n]ohw`, whatever letters name the axes (ONNX models and NNEF archives
/// name them differently).
fn channels_first_1x1(axes: &str) -> bool {
    let Some((inputs, output)) = axes.split_once("->") else {
        return false;
    };
    let Some((x, w)) = inputs.split_once(',') else {
        return false;
    };
    let (x, w, output): (Vec<char>, Vec<char>, Vec<char>) = (
        x.chars().collect(),
        w.chars().collect(),
        output.chars().collect(),
    );
    let [o, i] = w[..] else {
        return false;
    };
    let Some(batch) = x.len().checked_sub(3).filter(|b| *b <= 1) else {
        return false;
    };
    let mut want = x.clone();
    want[batch] = o;
    x[batch] == i && output == want && !x.contains(&o)
}

pub fn find(model: &TypedModel, node: &TypedNode) -> Option<Substitution> {
    let einsum = node.op_as::<EinSum>()?;
    if einsum.q_params.is_some() || !channels_first_1x1(&einsum.axes.to_string()) {
        return None;
    }
    let x = node.inputs[0];
    let x_fact = model.outlet_fact(x).ok()?;
    let x_shape = x_fact.shape.as_concrete()?;
    let weights = constant(model, node.inputs[1])?;
    let channels = x_shape[x_shape.len() - 3];
    let outputs = weights.len() / channels;
    if x_fact.datum_type != f32::datum_type() || weights.len() != outputs * channels {
        return None;
    }
    let mut shape: TVec<usize> = x_shape.into();
    shape[x_shape.len() - 3] = outputs;
    let mut op = Pointwise {
        inputs: channels,
        outputs,
        transposed: Arc::new(kernel::transpose(&weights, outputs, channels)),
        bias: Arc::new(vec![0.0; outputs]),
        residual: false,
        relu: false,
        shape,
    };
    let (mut last, mut inputs) = (node.id, tvec![x]);
    // + bias, constant along the channels
    let bias = binary_reader(model, last, "Add").and_then(|(add, other)| {
        let shape = model.outlet_fact(other).ok()?.shape.as_concrete()?.to_vec();
        let per_channel = shape.iter().rev().skip(3).all(|d| *d == 1)
            && shape.iter().rev().take(3).eq([1, 1, outputs].iter());
        if !per_channel {
            return None;
        }
        Some((add.id, constant(model, other)?))
    });
    if let Some((add, bias)) = bias {
        op.bias = Arc::new(bias);
        last = add;
    }
    // + residual, of the output's shape
    let residual = binary_reader(model, last, "Add").filter(|(_, other)| {
        model
            .outlet_fact(*other)
            .is_ok_and(|f| f.konst.is_none() && f.shape.as_concrete() == Some(op.shape.as_slice()))
    });
    if let Some((add, other)) = residual {
        op.residual = true;
        inputs.push(other);
        last = add.id;
    }
    // max(·, 0)
    if let Some(max) = relu_after(model, last) {
        op.relu = true;
        last = max;
    }
    Some(Substitution {
        last,
        inputs,
        op: Box::new(op),
    })
}

#[cfg(test)]
mod tests {
    use super::super::kernel::noise;
    use super::*;

    #[test]
    fn recognises_1x1_convolutions_by_layout_not_letters() {
        for axes in ["NIHW,OI->NOHW", "IHW,OI->OHW", "akbm,nk->anbm"] {
            assert!(channels_first_1x1(axes), "{axes}");
        }
        for axes in [
            "amk,nk->amn",
            "NHWI,OI->OHW",
            "NIHW,OI->NHWO",
            "IHW,OI->O",
            "IHW,IO->OHW",
        ] {
            assert!(!channels_first_1x1(axes), "{axes}");
        }
    }

    /// The op against the definition, on every path this CPU has and in place, over
    /// block and tile edges: output channels below and off the blocks (4 or 8), pixels
    /// below, off and across the blocks (24 or 48) and the tile (with a remainder shorter
    /// than a block), with and without residual and ReLU.
    #[test]
    fn matches_the_definition() {
        for (inputs, outputs, h, w) in [
            (3, 2, 3, 5),
            (5, 3, 6, 9),
            (24, 24, 16, 16),
            (7, 42, 9, 31),
            (96, 6, 8, 8),
            (5, 9, 40, 41),
            (4, 4, 2, 5),
            (9, 9, 2, 449),
        ] {
            for (residual, relu) in [(false, false), (true, true), (false, true)] {
                let pixels = h * w;
                let weights = noise(outputs * inputs, 1);
                let op = Pointwise {
                    inputs,
                    outputs,
                    transposed: Arc::new(kernel::transpose(&weights, outputs, inputs)),
                    bias: Arc::new(noise(outputs, 2)),
                    residual,
                    relu,
                    shape: tvec![1, outputs, h, w],
                };
                let x = noise(inputs * pixels, 3);
                let res = noise(outputs * pixels, 4);
                let res = residual.then_some(&res[..]);
                let mut portable = vec![f32::NAN; outputs * pixels];
                op.run_with::<Portable<false>, ROWS, COLUMNS>(
                    Input::Separate(&x),
                    res,
                    &mut portable,
                );
                // AVX2 even where `run` takes AVX-512.
                #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
                let mut avx2 = portable.clone();
                #[cfg(target_arch = "x86_64")]
                if kernel::avx2_fma() {
                    // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                    unsafe { op.run_avx2_fma(Input::Separate(&x), res, &mut avx2) };
                }
                let mut native = vec![f32::NAN; outputs * pixels];
                op.run(Input::Separate(&x), res, &mut native);
                if op.in_place() {
                    let mut data = x.clone();
                    op.run(Input::InPlace, res, &mut data);
                    assert_eq!(data, native, "in place, {inputs}→{outputs} on {h}×{w}");
                }
                for o in 0..outputs {
                    for p in 0..pixels {
                        let mut want = op.bias[o] + res.map_or(0.0, |r| r[o * pixels + p]);
                        for i in 0..inputs {
                            want += weights[o * inputs + i] * x[i * pixels + p];
                        }
                        if relu {
                            want = want.max(0.0);
                        }
                        let at = o * pixels + p;
                        for got in [portable[at], avx2[at], native[at]] {
                            assert!(
                                (got - want).abs() < 1e-5,
                                "{inputs}→{outputs} on {h}×{w}: ({o}, {p}) is {got}, not {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
