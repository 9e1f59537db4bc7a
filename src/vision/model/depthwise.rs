//! A fast depthwise convolution for tract.
//!
//! tract 0.22 evaluates depthwise convolutions (one filter per channel) with a generic
//! per-output-pixel loop that took most of BlazeFace's and MobileFaceNet's time. [`find`]
//! puts [`Depthwise`] in place of each. Channels first, every plane is copied into a
//! zero-bordered scratch plane and blocks of outputs along a row accumulate all taps in
//! registers; channels last, blocks of channels do the same. FMA where the CPU has it.

use std::sync::Arc;

use tract_nnef::prelude::*;
use tract_nnef::tract_core::internal::*;
use tract_nnef::tract_core::ops::cnn::KernelFormat;
use tract_nnef::tract_core::ops::nn::DataFormat;

use super::graph::ConstantConv;
use super::kernel::{self, Geometry, Input, madd, unary_op};
use super::{Floats, Substitution};

/// Depthwise 2-D convolution of one image, f32, with constant weights and bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Depthwise {
    channels: usize,
    geometry: Geometry,
    /// Channels last (`[(1,) H, W, C]`) or first (`[(1,) C, H, W]`).
    nhwc: bool,
    /// The tensors have the leading batch axis of 1.
    batch: bool,
    /// `[kh][kw][c]` for channels last, `[c][kh][kw]` for channels first.
    weights: Arc<Vec<f32>>,
    bias: Arc<Vec<f32>>,
}

impl Depthwise {
    /// The op for `found`, if it is a plain depthwise convolution; `None` otherwise.
    fn from_conv(found: &ConstantConv) -> Option<Depthwise> {
        let ConstantConv {
            conv,
            shape,
            kernel,
            bias,
            ..
        } = found;
        let c = conv.input_channels();
        let is_depthwise = conv.group == c && conv.output_channels() == c && c > 1;
        if !is_depthwise || conv.q_params.is_some() || conv.kernel_fmt != KernelFormat::OIHW {
            return None;
        }
        let (nhwc, batch) = match conv.pool_spec.data_format {
            DataFormat::NHWC => (true, true),
            DataFormat::NCHW => (false, true),
            DataFormat::HWC => (true, false),
            DataFormat::CHW => (false, false),
        };
        let (h, w) = match (nhwc, batch, shape) {
            (true, true, [1, h, w, ch])
            | (false, true, [1, ch, h, w])
            | (true, false, [h, w, ch])
            | (false, false, [ch, h, w])
                if *ch == c =>
            {
                (*h, *w)
            }
            _ => return None,
        };
        let kshape = kernel.shape();
        if kernel.datum_type() != f32::datum_type()
            || kshape.len() != 4
            || kshape[0] != c
            || kshape[1] != 1
        {
            return None;
        }
        let (kh, kw) = (kshape[2], kshape[3]);
        if kh * kw > MAX_TAPS {
            return None;
        }
        let k = kernel.floats().ok()?;
        // [c][kh][kw], or [kh][kw][c] for channels last.
        let weights = if nhwc {
            kernel::transpose(k, c, kh * kw)
        } else {
            k.to_vec()
        };
        Some(Depthwise {
            channels: c,
            geometry: Geometry::of(conv, (h, w), (kh, kw)),
            nhwc,
            batch,
            weights: Arc::new(weights),
            bias: Arc::new(kernel::bias(bias, c)?),
        })
    }

    /// The input coordinate read by output `o` through kernel tap `k` on one axis.
    #[inline(always)]
    fn source(
        o: usize,
        k: usize,
        stride: usize,
        dilation: usize,
        pad: usize,
        len: usize,
    ) -> Option<usize> {
        (o * stride + k * dilation)
            .checked_sub(pad)
            .filter(|&i| i < len)
    }

    /// Whether the output may overwrite the input: channels first, output of the input's
    /// shape (each plane is copied before its output overwrites it).
    fn in_place(&self) -> bool {
        !self.nhwc && self.geometry.input_hw == self.geometry.output_hw
    }

    /// Runs the convolution, with AVX2 and FMA where the CPU has them, and AVX-512 for
    /// the rows it covers where the CPU has it too.
    fn run(&self, input: Input, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if kernel::avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            unsafe { self.run_avx2_fma(input, out, kernel::avx512()) };
            return;
        }
        self.run_with::<{ kernel::NATIVE_FMA }>(input, out, false);
    }

    /// With `avx512` (which the CPU must have), the rows [`avx512_row`] covers take it.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2_fma(&self, input: Input, out: &mut [f32], avx512: bool) {
        self.run_with::<true>(input, out, avx512);
    }

    #[inline(always)]
    fn run_with<const FMA: bool>(&self, input: Input, out: &mut [f32], avx512: bool) {
        if self.nhwc {
            let mut copy = Vec::new();
            self.run_nhwc::<FMA>(input.apart(out, &mut copy), out);
        } else {
            match self.geometry.stride.1 {
                1 => self.run_nchw::<FMA, 1>(input, out, avx512),
                2 => self.run_nchw::<FMA, 2>(input, out, false),
                _ => self.run_nchw::<FMA, 0>(input, out, false),
            }
        }
    }

    /// Channels last: for each output pixel, the channels in register-sized blocks, all
    /// taps accumulated before one store.
    #[inline(always)]
    fn run_nhwc<const FMA: bool>(&self, input: &[f32], out: &mut [f32]) {
        let c = self.channels;
        let Geometry {
            input_hw: (h, w),
            output_hw: (oh, ow),
            kernel_hw: (kh, kw),
            stride,
            dilation,
            pad,
        } = self.geometry;
        let mut taps: heapless::Vec<(&[f32], &[f32]), MAX_TAPS> = heapless::Vec::new();
        for oy in 0..oh {
            for ox in 0..ow {
                taps.clear();
                for ky in 0..kh {
                    let Some(iy) = Self::source(oy, ky, stride.0, dilation.0, pad.0, h) else {
                        continue;
                    };
                    for kx in 0..kw {
                        if let Some(ix) = Self::source(ox, kx, stride.1, dilation.1, pad.1, w) {
                            let tap = (
                                &input[(iy * w + ix) * c..][..c],
                                &self.weights[(ky * kw + kx) * c..][..c],
                            );
                            // Capacity is checked when the op is built.
                            let _ = taps.push(tap);
                        }
                    }
                }
                let acc = &mut out[(oy * ow + ox) * c..][..c];
                let mut from = 0;
                from = channel_blocks::<FMA, 32>(acc, &self.bias, &taps, from);
                from = channel_blocks::<FMA, 8>(acc, &self.bias, &taps, from);
                channel_blocks::<FMA, 1>(acc, &self.bias, &taps, from);
            }
        }
    }

    /// Channels first: each channel's plane is copied into a zero-bordered scratch plane,
    /// so that every output reads only inside it; then along each output row, blocks of
    /// outputs accumulate all taps in registers. `S` is the column stride when it is 1 or
    /// 2 (known at compile time), 0 for any other. At stride 1, each plane is computed as
    /// one long row (fewer, longer blocks) and then copied out. With `avx512` (which the
    /// CPU must have), the rows [`avx512_row`] covers take it.
    #[inline(always)]
    fn run_nchw<const FMA: bool, const S: usize>(
        &self,
        input: Input,
        out: &mut [f32],
        avx512: bool,
    ) {
        let Geometry {
            input_hw: (h, w),
            output_hw: (oh, ow),
            kernel_hw: (kh, kw),
            stride: (sy, sx),
            dilation: (dy, dx),
            pad: (py, px),
        } = self.geometry;
        let (ph, pw) = self.geometry.padded_hw();
        let mut padded = vec![0.0f32; ph * pw];
        let flat = S == 1;
        let mut scratch = vec![0.0f32; if flat { oh * pw } else { 0 }];
        for ch in 0..self.channels {
            let plane = match input {
                Input::Separate(input) => &input[ch * h * w..][..h * w],
                // Only planes up to this one have been overwritten.
                Input::InPlace => &out[ch * h * w..][..h * w],
            };
            for (y, src) in plane.chunks_exact(w).enumerate() {
                padded[(y + py) * pw + px..][..w].copy_from_slice(src);
            }
            let weights = &self.weights[ch * kh * kw..][..kh * kw];
            let geometry = (sx, dx, self.bias[ch]);
            let mut lines: heapless::Vec<(&[f32], &[f32]), MAX_TAPS> = heapless::Vec::new();
            // The kernel rows for outputs from row `oy`, each over `len` padded columns.
            let kernel_rows = |lines: &mut heapless::Vec<_, MAX_TAPS>, oy: usize, len| {
                lines.clear();
                for (ky, taps) in weights.chunks_exact(kw).enumerate() {
                    // Capacity is checked when the op is built.
                    let _ = lines.push((&padded[(oy * sy + ky * dy) * pw..][..len], taps));
                }
            };
            if flat {
                // Stride 1: the padded plane read as one row of `pw` columns per output
                // row, the last `pw - ow` of each outside the output.
                let len = (oh - 1) * pw + ow;
                kernel_rows(&mut lines, 0, len + (kw - 1) * dx);
                let all = &mut scratch[..len];
                any_row::<FMA, S>(all, &lines, geometry, (kh, kw), avx512);
                for (oy, row) in out[ch * oh * ow..][..oh * ow]
                    .chunks_exact_mut(ow)
                    .enumerate()
                {
                    row.copy_from_slice(&all[oy * pw..][..ow]);
                }
                continue;
            }
            for oy in 0..oh {
                kernel_rows(&mut lines, oy, pw);
                let row = &mut out[(ch * oh + oy) * ow..][..ow];
                any_row::<FMA, S>(row, &lines, geometry, (kh, kw), avx512);
            }
        }
    }

    fn output_shape(&self) -> TVec<usize> {
        let (oh, ow, c) = (
            self.geometry.output_hw.0,
            self.geometry.output_hw.1,
            self.channels,
        );
        let mut shape: TVec<usize> = if self.nhwc {
            tvec![oh, ow, c]
        } else {
            tvec![c, oh, ow]
        };
        if self.batch {
            shape.insert(0, 1);
        }
        shape
    }
}

/// Outputs computed together along a row (two AVX2 registers, four NEON ones).
const LANES: usize = 8;

/// Most kernel taps a convolution may have (rows for channels first, taps for channels
/// last); larger kernels are left to tract.
const MAX_TAPS: usize = 64;

/// Channels first: writes the output row `row` from `lines` (padded input row, kernel
/// row); `geometry` is the column stride, dilation and the bias. `K` is the kernel's side
/// when it is square with dilation 1 (0 for any other): its loops then unroll.
#[inline(always)]
fn output_row<const FMA: bool, const S: usize, const K: usize>(
    row: &mut [f32],
    lines: &[(&[f32], &[f32])],
    geometry: (usize, usize, f32),
) {
    // Wide blocks, then the rest in one block ending at the row's end that overlaps
    // outputs already written (with the same values).
    let ow = row.len();
    let mut ox = 0;
    while ox + 4 * LANES <= ow {
        row_block::<FMA, S, { 4 * LANES }, K>(row, lines, ox, geometry);
        ox += 4 * LANES;
    }
    while ox + 2 * LANES <= ow {
        row_block::<FMA, S, { 2 * LANES }, K>(row, lines, ox, geometry);
        ox += 2 * LANES;
    }
    if ox == ow {
    } else if ow >= 2 * LANES {
        row_block::<FMA, S, { 2 * LANES }, K>(row, lines, ow - 2 * LANES, geometry);
    } else if ow >= LANES {
        row_block::<FMA, S, LANES, K>(row, lines, 0, geometry);
        row_block::<FMA, S, LANES, K>(row, lines, ow - LANES, geometry);
    } else {
        for ox in 0..ow {
            row_block::<FMA, S, 1, 0>(row, lines, ox, geometry);
        }
    }
}

/// Writes the output row `row` by the fastest path that covers it: [`avx512_row`] where
/// `avx512` (the CPU must have it), else [`output_row`] with the kernel's side known at
/// compile time for square 3×3 and 5×5 kernels of dilation 1.
#[inline(always)]
fn any_row<const FMA: bool, const S: usize>(
    row: &mut [f32],
    lines: &[(&[f32], &[f32])],
    geometry: (usize, usize, f32),
    kernel_hw: (usize, usize),
    avx512: bool,
) {
    let (_, dx, bias) = geometry;
    if avx512 && S == 1 && dx == 1 && avx512_row(row, lines, bias, kernel_hw) {
        return;
    }
    match (kernel_hw, dx, S) {
        ((5, 5), 1, 1..) => output_row::<FMA, S, 5>(row, lines, geometry),
        ((3, 3), 1, 1..) => output_row::<FMA, S, 3>(row, lines, geometry),
        _ => output_row::<FMA, S, 0>(row, lines, geometry),
    }
}

/// [`output_row`] in AVX-512, which the CPU must have, for stride 1 and dilation 1,
/// where it covers the row (a 3×3 or 5×5 kernel, a row of a register or more); returns
/// whether it did.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
#[inline(always)]
fn avx512_row(
    row: &mut [f32],
    lines: &[(&[f32], &[f32])],
    bias: f32,
    kernel_hw: (usize, usize),
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if row.len() >= avx512::LANES {
        match kernel_hw {
            // SAFETY (both): the caller checked that the CPU has AVX-512.
            (5, 5) => unsafe { avx512::output_row::<5>(row, lines, bias) },
            (3, 3) => unsafe { avx512::output_row::<3>(row, lines, bias) },
            _ => return false,
        }
        return true;
    }
    false
}

/// Writes `row[ox..ox + N]`, as [`output_row`] defines.
#[inline(always)]
fn row_block<const FMA: bool, const S: usize, const N: usize, const K: usize>(
    row: &mut [f32],
    lines: &[(&[f32], &[f32])],
    ox: usize,
    (sx, dx, bias): (usize, usize, f32),
) {
    let mut acc = [bias; N];
    if K > 0 {
        // Every slice is checked once per kernel row, every index in it is constant.
        for (line, taps) in &lines[..K] {
            let (src, taps) = (&line[ox * S..][..(N - 1) * S + K], &taps[..K]);
            for kx in 0..K {
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = madd::<FMA>(taps[kx], src[kx + i * S], *a);
                }
            }
        }
    } else {
        for (line, taps) in lines {
            for (kx, &t) in taps.iter().enumerate() {
                let base = ox * sx + kx * dx;
                if S == 0 {
                    for (i, a) in acc.iter_mut().enumerate() {
                        *a = madd::<FMA>(t, line[base + i * sx], *a);
                    }
                } else {
                    let src = &line[base..][..(N - 1) * S + 1];
                    for (i, a) in acc.iter_mut().enumerate() {
                        *a = madd::<FMA>(t, src[i * S], *a);
                    }
                }
            }
        }
    }
    row[ox..ox + N].copy_from_slice(&acc);
}

/// Channels-first rows in AVX-512, built where the compiler has it stable (see
/// [`kernel::avx512`]): twice the AVX2 work per instruction.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    /// Floats per register; rows must be at least this long.
    pub const LANES: usize = 16;

    /// [`super::output_row`] for stride 1 and a `K`×`K` kernel of dilation 1: blocks of
    /// 8, 2 then 1 registers along the row, the last one ending at the row's end.
    ///
    /// # Safety
    /// The CPU must support AVX-512 (F).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn output_row<const K: usize>(
        row: &mut [f32],
        lines: &[(&[f32], &[f32])],
        bias: f32,
    ) {
        let ow = row.len();
        let mut ox = 0;
        while ox + 8 * LANES <= ow {
            block::<K, 8>(row, lines, ox, bias);
            ox += 8 * LANES;
        }
        while ox + 2 * LANES <= ow {
            block::<K, 2>(row, lines, ox, bias);
            ox += 2 * LANES;
        }
        while ox + LANES <= ow {
            block::<K, 1>(row, lines, ox, bias);
            ox += LANES;
        }
        if ox < ow {
            block::<K, 1>(row, lines, ow - LANES, bias);
        }
    }

    /// Writes `row[ox..ox + R * LANES]`, `R` registers accumulating every tap.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn block<const K: usize, const R: usize>(
        row: &mut [f32],
        lines: &[(&[f32], &[f32])],
        ox: usize,
        bias: f32,
    ) {
        use std::arch::x86_64::*;
        let mut acc = [_mm512_set1_ps(bias); R];
        for (line, taps) in &lines[..K] {
            let (src, taps) = (&line[ox..][..R * LANES + K - 1], &taps[..K]);
            for (kx, tap) in taps.iter().enumerate() {
                let tap = _mm512_set1_ps(*tap);
                for (r, a) in acc.iter_mut().enumerate() {
                    let x = &src[kx + r * LANES..][..LANES];
                    // SAFETY: the load reads the `LANES` floats of `x`.
                    *a = _mm512_fmadd_ps(tap, unsafe { _mm512_loadu_ps(x.as_ptr()) }, *a);
                }
            }
        }
        let dst = &mut row[ox..][..R * LANES];
        for (a, d) in acc.iter().zip(dst.chunks_exact_mut(LANES)) {
            // SAFETY: `d` holds `LANES` floats.
            unsafe { _mm512_storeu_ps(d.as_mut_ptr(), *a) };
        }
    }
}

/// Channels last: fills `acc[from..]` in blocks of `N` channels with the bias plus every
/// tap (pixel, weights); returns where the blocks stopped.
#[inline(always)]
fn channel_blocks<const FMA: bool, const N: usize>(
    acc: &mut [f32],
    bias: &[f32],
    taps: &[(&[f32], &[f32])],
    mut from: usize,
) -> usize {
    while from + N <= acc.len() {
        let mut block = [0.0f32; N];
        block.copy_from_slice(&bias[from..from + N]);
        for (pixel, weights) in taps {
            let (p, t) = (&pixel[from..from + N], &weights[from..from + N]);
            for i in 0..N {
                block[i] = madd::<FMA>(p[i], t[i], block[i]);
            }
        }
        acc[from..from + N].copy_from_slice(&block);
        from += N;
    }
    from
}

unary_op!(Depthwise, "DepthwiseFast", in_place);

/// [`Depthwise`] in place of `node`, if it is a plain depthwise `Conv`.
pub fn find(model: &TypedModel, node: &TypedNode) -> Option<Substitution> {
    let found = ConstantConv::of(model, node)?;
    let op = Depthwise::from_conv(&found)?;
    Some(Substitution {
        last: node.id,
        inputs: tvec![found.x],
        op: Box::new(op),
    })
}

#[cfg(test)]
mod tests {
    use super::super::kernel::noise;
    use super::*;

    /// The op against a direct evaluation of the definition, over the geometries the
    /// blocks and borders must cover: strides 1 to 3, dilation, asymmetric padding, rows
    /// narrower and wider than a block, channel counts off the block sizes; AVX2 alone
    /// and with the AVX-512 rows.
    #[test]
    fn matches_the_definition_on_every_geometry() {
        for nhwc in [false, true] {
            for (c, h, w, k, stride, dilation, pad) in [
                (3, 9, 5, 3, 1, 1, 1),
                (5, 17, 43, 3, 1, 1, 1),
                (12, 20, 37, 5, 2, 1, 2),
                (7, 11, 70, 3, 2, 2, 0),
                (9, 8, 8, 7, 3, 1, 3),
                (4, 14, 14, 3, 2, 1, 0),
                (3, 6, 150, 5, 1, 1, 2),
                (2, 5, 20, 3, 1, 1, 1),
                (4, 9, 13, 3, 1, 2, 2),
                (3, 10, 12, 7, 1, 1, 3),
            ] {
                let pad_hw = (pad, pad / 2);
                let out_len = |n: usize| (n + pad + pad - dilation * (k - 1) - 1) / stride + 1;
                let (oh, ow) = (out_len(h), out_len(w));
                let kernel = noise(c * k * k, 1);
                let bias = noise(c, 2);
                let input = noise(c * h * w, 3);
                let at = |ch: usize, y: usize, x: usize| {
                    if nhwc {
                        (y * w + x) * c + ch
                    } else {
                        (ch * h + y) * w + x
                    }
                };
                let weights = if nhwc {
                    kernel::transpose(&kernel, c, k * k)
                } else {
                    kernel.clone()
                };
                let op = Depthwise {
                    channels: c,
                    geometry: Geometry::square((h, w), (oh, ow), (k, stride, dilation), pad_hw),
                    nhwc,
                    batch: false,
                    weights: Arc::new(weights),
                    bias: Arc::new(bias.clone()),
                };
                let mut got = vec![f32::NAN; c * oh * ow];
                op.run(Input::Separate(&input), &mut got);
                // AVX2 alone even where `run` takes AVX-512 for some rows.
                #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
                let mut avx2 = got.clone();
                #[cfg(target_arch = "x86_64")]
                if kernel::avx2_fma() {
                    // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                    unsafe { op.run_avx2_fma(Input::Separate(&input), &mut avx2, false) };
                }
                if op.in_place() {
                    let mut data = input.clone();
                    op.run(Input::InPlace, &mut data);
                    assert_eq!(data, got, "in place, {c}x{h}x{w} k{k}");
                }
                for ch in 0..c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut want = bias[ch];
                            for ky in 0..k {
                                for kx in 0..k {
                                    let iy =
                                        (oy * stride + ky * dilation) as isize - pad_hw.0 as isize;
                                    let ix =
                                        (ox * stride + kx * dilation) as isize - pad_hw.1 as isize;
                                    if (0..h as isize).contains(&iy)
                                        && (0..w as isize).contains(&ix)
                                    {
                                        want += kernel[(ch * k + ky) * k + kx]
                                            * input[at(ch, iy as usize, ix as usize)];
                                    }
                                }
                            }
                            let o = if nhwc {
                                (oy * ow + ox) * c + ch
                            } else {
                                (ch * oh + oy) * ow + ox
                            };
                            for got in [got[o], avx2[o]] {
                                assert!(
                                    (got - want).abs() < 1e-5,
                                    "nhwc {nhwc}, {c}x{h}x{w} k{k} s{stride} d{dilation} \
                                     p{pad}: output ({ch},{oy},{ox}) is {got} not {want}",
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
