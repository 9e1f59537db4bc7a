//! A fast convolution for the first layer of a network: few input channels (the image's
//! three), a wide kernel, channels-first tensors, ReLU fused.
//!
//! tract lowers such a convolution to an image-to-column copy and a matrix product, which
//! with BlazeFace's 5×5, stride-2, 3→24 first layer costs a sixth of the detector's time.
//! [`Stem`] accumulates, for blocks of outputs along a row, several output channels in
//! registers across all taps, reading a zero-bordered copy of the input split by column
//! phase. It reads channels-last images too, taking the place of the transposition that
//! models converted from TensorFlow start with.

use std::sync::Arc;

use tract_nnef::prelude::*;
use tract_nnef::tract_core::internal::*;
use tract_nnef::tract_core::ops::cnn::KernelFormat;
use tract_nnef::tract_core::ops::nn::DataFormat;

use super::graph::{ConstantConv, relu_after, sole_reader};
use super::kernel::{self, Geometry, unary_op};
use super::{Floats, Substitution};

/// Most input channels for which a convolution counts as a stem.
const MAX_INPUTS: usize = 4;
/// Outputs along a row per AVX2 register.
#[cfg(target_arch = "x86_64")]
const LANES: usize = 8;

/// Convolution `[(1,) I, H, W]` (or channels last, `[(1,) H, W, I]`) →
/// `[(1,) O, OH, OW]`, f32, group 1, with bias and an optional ReLU.
#[derive(Debug, Clone, PartialEq)]
pub struct Stem {
    inputs: usize,
    outputs: usize,
    geometry: Geometry,
    /// The weights, `[i][ky][kx][o]`.
    weights: Arc<Vec<f32>>,
    bias: Arc<Vec<f32>>,
    relu: bool,
    batch: bool,
    channels_last: bool,
}

/// The input with zero borders (every tap of every output reads inside it), channels
/// first, each row split by column phase: for stride 2, even columns, then odd ones. So
/// the inputs of consecutive outputs lie next to each other for every tap.
struct Phased {
    data: Vec<f32>,
    /// Rows of each channel.
    rows: usize,
    /// Columns of each phase.
    span: usize,
    stride: usize,
}

impl Phased {
    /// Where channel `i`'s value at padded row `y`, column `x` lies.
    #[inline(always)]
    fn at(&self, i: usize, y: usize, x: usize) -> usize {
        ((i * self.rows + y) * self.stride + x % self.stride) * self.span + x / self.stride
    }
}

impl Stem {
    /// The input, in either layout, as [`Phased`] describes.
    fn phased(&self, input: &[f32]) -> Phased {
        let (h, w) = self.geometry.input_hw;
        let (ph, pw) = self.geometry.padded_hw();
        let (py, px) = self.geometry.pad;
        let stride = self.geometry.stride.1;
        let span = pw.div_ceil(stride);
        let mut phased = Phased {
            data: vec![0.0; self.inputs * ph * stride * span],
            rows: ph,
            span,
            stride,
        };
        let n = self.inputs;
        for i in 0..n {
            for y in 0..h {
                for phase in 0..stride {
                    let at = phased.at(i, y + py, phase);
                    let dst = &mut phased.data[at..][..span];
                    // Padded column `j * stride + phase` is input column `x`.
                    for (j, d) in dst.iter_mut().enumerate() {
                        let Some(x) = (j * stride + phase).checked_sub(px).filter(|x| *x < w)
                        else {
                            continue;
                        };
                        *d = if self.channels_last {
                            input[(y * w + x) * n + i]
                        } else {
                            input[(i * h + y) * w + x]
                        };
                    }
                }
            }
        }
        phased
    }

    /// Output channel `o` at `(oy, ox)`, before bias and ReLU.
    fn sum(&self, phased: &Phased, o: usize, oy: usize, ox: usize) -> f32 {
        let Geometry {
            kernel_hw: (kh, kw),
            stride: (sy, sx),
            dilation: (dy, dx),
            ..
        } = self.geometry;
        let mut acc = 0.0;
        for i in 0..self.inputs {
            for ky in 0..kh {
                for kx in 0..kw {
                    let w = self.weights[((i * kh + ky) * kw + kx) * self.outputs + o];
                    acc += w * phased.data[phased.at(i, oy * sy + ky * dy, ox * sx + kx * dx)];
                }
            }
        }
        acc
    }

    fn finish(&self, sum: f32, o: usize) -> f32 {
        let v = sum + self.bias[o];
        if self.relu { v.max(0.0) } else { v }
    }

    fn run(&self, input: &[f32], out: &mut [f32]) {
        let phased = self.phased(input);
        #[cfg(target_arch = "x86_64")]
        if kernel::avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            unsafe { self.run_avx2(&phased, out) };
            return;
        }
        self.run_portable(&phased, out);
    }

    fn run_portable(&self, phased: &Phased, out: &mut [f32]) {
        let (oh, ow) = self.geometry.output_hw;
        for o in 0..self.outputs {
            for oy in 0..oh {
                for ox in 0..ow {
                    let sum = self.sum(phased, o, oy, ox);
                    out[(o * oh + oy) * ow + ox] = self.finish(sum, o);
                }
            }
        }
    }

    /// Sixteen outputs along a row at a time (eight in narrow rows; the last block
    /// overlapping the one before) for six output channels (twelve in narrow rows): each
    /// tap's two input loads then serve twelve multiply-adds.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, phased: &Phased, out: &mut [f32]) {
        let ((oh, ow), (kh, kw)) = (self.geometry.output_hw, self.geometry.kernel_hw);
        let (sy, dy, dx) = (
            self.geometry.stride.0,
            self.geometry.dilation.0,
            self.geometry.dilation.1,
        );
        // Where each tap reads, for the output at the top-left corner.
        let offsets: Vec<usize> = (0..self.inputs * kh * kw)
            .map(|t| phased.at(t / (kh * kw), t / kw % kh * dy, t % kw * dx))
            .collect();
        for oy in 0..oh {
            if ow < LANES {
                for ox in 0..ow {
                    for o in 0..self.outputs {
                        let sum = self.sum(phased, o, oy, ox);
                        out[(o * oh + oy) * ow + ox] = self.finish(sum, o);
                    }
                }
                continue;
            }
            let wide = ow >= 2 * LANES;
            let width = if wide { 2 * LANES } else { LANES };
            for ox in kernel::starts(ow, width) {
                let block = (
                    &phased.data[..],
                    &offsets[..],
                    phased.at(0, oy * sy, 0) + ox,
                    (oy, ox),
                );
                let mut o = 0;
                while o < self.outputs {
                    o += match (wide, self.outputs - o) {
                        (true, 6..) => unsafe { self.block_avx2::<2, 6>(block, o, out) },
                        (true, _) => unsafe { self.block_avx2::<2, 1>(block, o, out) },
                        (false, 12..) => unsafe { self.block_avx2::<1, 12>(block, o, out) },
                        (false, 4..) => unsafe { self.block_avx2::<1, 4>(block, o, out) },
                        (false, _) => unsafe { self.block_avx2::<1, 1>(block, o, out) },
                    };
                }
            }
        }
    }

    /// Output channels `[first, first + G)` of `P` × 8 outputs from `(oy, ox)`, whose
    /// inputs start at `base` in the phased input; returns `G`.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_avx2<const P: usize, const G: usize>(
        &self,
        (phased, offsets, base, (oy, ox)): (&[f32], &[usize], usize, (usize, usize)),
        first: usize,
        out: &mut [f32],
    ) -> usize {
        use std::arch::x86_64::*;
        let (oh, ow) = self.geometry.output_hw;
        let mut acc = [[_mm256_setzero_ps(); P]; G];
        for (t, offset) in offsets.iter().enumerate() {
            let x = &phased[base + offset..][..P * LANES];
            let x: [__m256; P] =
                std::array::from_fn(|p| unsafe { _mm256_loadu_ps(x[p * LANES..].as_ptr()) });
            let w = &self.weights[t * self.outputs + first..][..G];
            for (a, w) in acc.iter_mut().zip(w) {
                let w = _mm256_set1_ps(*w);
                for (a, x) in a.iter_mut().zip(&x) {
                    *a = _mm256_fmadd_ps(w, *x, *a);
                }
            }
        }
        for (g, a) in acc.iter().enumerate() {
            let o = first + g;
            let dst = &mut out[(o * oh + oy) * ow + ox..][..P * LANES];
            for (a, dst) in a.iter().zip(dst.chunks_exact_mut(LANES)) {
                let mut v = _mm256_add_ps(*a, _mm256_set1_ps(self.bias[o]));
                if self.relu {
                    v = _mm256_max_ps(v, _mm256_setzero_ps());
                }
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) };
            }
        }
        G
    }

    fn output_shape(&self) -> TVec<usize> {
        let mut shape = tvec![
            self.outputs,
            self.geometry.output_hw.0,
            self.geometry.output_hw.1
        ];
        if self.batch {
            shape.insert(0, 1);
        }
        shape
    }
}

unary_op!(Stem, "StemFast");

/// [`Stem`] in place of `node` (and the ReLU after it, and a transposition before it
/// from channels last), if it is a channels-first f32
/// convolution of group 1 with at most [`MAX_INPUTS`] input channels and constant
/// weights and bias.
pub fn find(model: &TypedModel, node: &TypedNode) -> Option<Substitution> {
    let ConstantConv {
        conv,
        x,
        shape,
        kernel,
        bias,
    } = ConstantConv::of(model, node)?;
    let batch = match (conv.pool_spec.data_format, shape) {
        (DataFormat::NCHW, [1, _, _, _]) => true,
        (DataFormat::CHW, [_, _, _]) => false,
        _ => return None,
    };
    let (inputs, outputs) = (conv.input_channels(), conv.output_channels());
    let rank = shape.len();
    if conv.group != 1
        || conv.q_params.is_some()
        || conv.kernel_fmt != KernelFormat::OIHW
        || inputs > MAX_INPUTS
        || shape[rank - 3] != inputs
        || kernel.rank() != 4
        || kernel.shape()[..2] != [outputs, inputs]
    {
        return None;
    }
    let (kh, kw) = (kernel.shape()[2], kernel.shape()[3]);
    let k = kernel.floats().ok()?;
    // [o][i][ky][kx] → [i][ky][kx][o]
    let weights = kernel::transpose(k, outputs, inputs * kh * kw);
    let mut op = Stem {
        inputs,
        outputs,
        geometry: Geometry::of(conv, (shape[rank - 2], shape[rank - 1]), (kh, kw)),
        weights: Arc::new(weights),
        bias: Arc::new(kernel::bias(&bias, outputs)?),
        relu: false,
        batch,
        channels_last: false,
    };
    // Read through a transposition from channels last that feeds only this convolution.
    let mut x = x;
    let producer = model.node(x.node);
    let from_channels_last = AxisOp::Move(rank - 1, rank - 3);
    if producer.op_as::<AxisOp>() == Some(&from_channels_last)
        && sole_reader(model, producer.id).is_some_and(|r| r.id == node.id)
    {
        op.channels_last = true;
        x = producer.inputs[0];
    }
    let mut last = node.id;
    if let Some(max) = relu_after(model, last) {
        op.relu = true;
        last = max;
    }
    Some(Substitution {
        last,
        inputs: tvec![x],
        op: Box::new(op),
    })
}

#[cfg(test)]
mod tests {
    use super::super::kernel::noise;
    use super::*;

    /// Both paths against the definition, over strides, dilation, asymmetric padding,
    /// rows narrower than either block and off their sizes, with and without ReLU, from
    /// either layout.
    #[test]
    fn matches_the_definition() {
        for (i, o, h, w, k, stride, dilation, pad, relu) in [
            (3, 24, 20, 22, 5, 2, 1, (1, 2), true),
            (3, 24, 12, 70, 5, 2, 1, (2, 1), false),
            (1, 8, 9, 3, 3, 1, 2, (2, 2), false),
            (4, 16, 15, 17, 3, 1, 1, (0, 1), true),
            (3, 5, 6, 7, 3, 2, 1, (1, 1), true),
        ] {
            let out_len = |n: usize, p: usize| (n + 2 * p - dilation * (k - 1) - 1) / stride + 1;
            let (oh, ow) = (out_len(h, pad.0), out_len(w, pad.1));
            let kernel = noise(o * i * k * k, 8);
            let mut op = Stem {
                inputs: i,
                outputs: o,
                geometry: Geometry::square((h, w), (oh, ow), (k, stride, dilation), pad),
                weights: Arc::new(kernel::transpose(&kernel, o, i * k * k)),
                bias: Arc::new(noise(o, 9)),
                relu,
                batch: true,
                channels_last: false,
            };
            let input = noise(i * h * w, 10);
            let mut runs = vec![];
            for (channels_last, input) in [
                (false, input.clone()),
                (true, kernel::transpose(&input, i, h * w)),
            ] {
                op.channels_last = channels_last;
                let mut native = vec![f32::NAN; o * oh * ow];
                op.run(&input, &mut native);
                let mut portable = vec![f32::NAN; o * oh * ow];
                op.run_portable(&op.phased(&input), &mut portable);
                runs.extend([native, portable]);
            }
            for oc in 0..o {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut want = op.bias[oc];
                        for ic in 0..i {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let y = (oy * stride + ky * dilation) as isize - pad.0 as isize;
                                    let x = (ox * stride + kx * dilation) as isize - pad.1 as isize;
                                    if (0..h as isize).contains(&y) && (0..w as isize).contains(&x)
                                    {
                                        want += kernel[((oc * i + ic) * k + ky) * k + kx]
                                            * input[(ic * h + y as usize) * w + x as usize];
                                    }
                                }
                            }
                        }
                        if relu {
                            want = want.max(0.0);
                        }
                        for got in runs.iter().map(|r| r[(oc * oh + oy) * ow + ox]) {
                            assert!(
                                (got - want).abs() < 1e-5,
                                "{i}→{o} k{k} s{stride}: ({oc},{oy},{ox}) is {got}, not {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
