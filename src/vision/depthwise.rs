//! A fast depthwise convolution for tract.
//!
//! tract 0.22 evaluates depthwise convolutions (one filter per channel) with a generic
//! per-output-pixel loop that takes most of BlazeFace's and MobileFaceNet's time. Before
//! optimisation, [`replace_depthwise`] swaps every such `Conv` of a model for
//! [`Depthwise`], whose loops run along contiguous memory (channels for NHWC, columns for
//! NCHW) so that the compiler vectorises them. Same arithmetic, same results.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Depthwise 2-D convolution of one image, f32, with constant weights and bias.
#[derive(Debug, Clone)]
pub struct Depthwise {
    channels: usize,
    input_hw: (usize, usize),
    output_hw: (usize, usize),
    kernel_hw: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
    /// Padding before the first row and column.
    pad: (usize, usize),
    /// Channels last (`[(1,) H, W, C]`) or first (`[(1,) C, H, W]`).
    nhwc: bool,
    /// The tensors have the leading batch axis of 1.
    batch: bool,
    /// `[kh][kw][c]` for channels last, `[c][kh][kw]` for channels first.
    weights: Arc<Vec<f32>>,
    bias: Arc<Vec<f32>>,
}

impl Depthwise {
    /// Builds the op for `conv` on an input of concrete `shape`, if it is a plain f32
    /// depthwise convolution with constant weights; `None` otherwise.
    fn from_conv(
        conv: &Conv,
        shape: &[usize],
        kernel: &Tensor,
        bias: &Tensor,
    ) -> Option<Depthwise> {
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
        let k = kernel.as_slice::<f32>().ok()?;
        let weights: Vec<f32> = if nhwc {
            (0..kh * kw)
                .flat_map(|t| (0..c).map(move |ch| k[ch * kh * kw + t]))
                .collect()
        } else {
            k.to_vec()
        };
        let bias = match bias.as_slice::<f32>().ok()? {
            [] => vec![0.0; c],
            [b] => vec![*b; c],
            b if b.len() == c => b.to_vec(),
            _ => return None,
        };
        let padding = conv.pool_spec.computed_padding(&[h, w]);
        let strides = conv.pool_spec.strides();
        let dilations = conv.pool_spec.dilations();
        Some(Depthwise {
            channels: c,
            input_hw: (h, w),
            output_hw: (padding[0].convoluted, padding[1].convoluted),
            kernel_hw: (kh, kw),
            stride: (strides[0], strides[1]),
            dilation: (dilations[0], dilations[1]),
            pad: (padding[0].pad_before, padding[1].pad_before),
            nhwc,
            batch,
            weights: Arc::new(weights),
            bias: Arc::new(bias),
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

    /// Runs the convolution, on AVX2 where the CPU has it (the loops vectorise 8 wide).
    fn run(&self, input: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { self.run_avx2(input, out) };
            return;
        }
        self.run_portable(input, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&self, input: &[f32], out: &mut [f32]) {
        self.run_portable(input, out);
    }

    #[inline(always)]
    fn run_portable(&self, input: &[f32], out: &mut [f32]) {
        if self.nhwc {
            self.run_nhwc(input, out);
        } else {
            self.run_nchw(input, out);
        }
    }

    #[inline(always)]
    fn run_nhwc(&self, input: &[f32], out: &mut [f32]) {
        let c = self.channels;
        let ((h, w), (oh, ow), (kh, kw)) = (self.input_hw, self.output_hw, self.kernel_hw);
        for oy in 0..oh {
            for ox in 0..ow {
                let acc = &mut out[(oy * ow + ox) * c..][..c];
                acc.copy_from_slice(&self.bias);
                for ky in 0..kh {
                    let Some(iy) =
                        Self::source(oy, ky, self.stride.0, self.dilation.0, self.pad.0, h)
                    else {
                        continue;
                    };
                    for kx in 0..kw {
                        let Some(ix) =
                            Self::source(ox, kx, self.stride.1, self.dilation.1, self.pad.1, w)
                        else {
                            continue;
                        };
                        let pixel = &input[(iy * w + ix) * c..][..c];
                        let tap = &self.weights[(ky * kw + kx) * c..][..c];
                        for ((a, p), t) in acc.iter_mut().zip(pixel).zip(tap) {
                            *a += p * t;
                        }
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn run_nchw(&self, input: &[f32], out: &mut [f32]) {
        let ((h, w), (oh, ow), (kh, kw)) = (self.input_hw, self.output_hw, self.kernel_hw);
        let (sx, dx, px) = (self.stride.1, self.dilation.1, self.pad.1);
        for ch in 0..self.channels {
            let plane = &input[ch * h * w..][..h * w];
            let taps = &self.weights[ch * kh * kw..][..kh * kw];
            for oy in 0..oh {
                let row = &mut out[(ch * oh + oy) * ow..][..ow];
                row.fill(self.bias[ch]);
                for ky in 0..kh {
                    let Some(iy) =
                        Self::source(oy, ky, self.stride.0, self.dilation.0, self.pad.0, h)
                    else {
                        continue;
                    };
                    let line = &plane[iy * w..][..w];
                    for kx in 0..kw {
                        let t = taps[ky * kw + kx];
                        // Outputs whose source column is inside the row.
                        let first = (px.saturating_sub(kx * dx)).div_ceil(sx);
                        let end = ((w + px).saturating_sub(kx * dx)).div_ceil(sx).min(ow);
                        if first >= end {
                            continue;
                        }
                        let start = first * sx + kx * dx - px;
                        if sx == 1 {
                            for (a, p) in row[first..end].iter_mut().zip(&line[start..]) {
                                *a += p * t;
                            }
                        } else {
                            for (a, p) in row[first..end]
                                .iter_mut()
                                .zip(line[start..].iter().step_by(sx))
                            {
                                *a += p * t;
                            }
                        }
                    }
                }
            }
        }
    }

    fn output_shape(&self) -> TVec<usize> {
        let (oh, ow, c) = (self.output_hw.0, self.output_hw.1, self.channels);
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

impl Op for Depthwise {
    fn name(&self) -> StaticName {
        "DepthwiseFast".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Depthwise {
    fn is_stateless(&self) -> bool {
        true
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = inputs[0].as_slice::<f32>()?;
        let shape = self.output_shape();
        let mut out = vec![0.0f32; shape.iter().product()];
        self.run(input, &mut out);
        Ok(tvec!(Tensor::from_shape(&shape, &out)?.into_tvalue()))
    }
}

impl TypedOp for Depthwise {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*self.output_shape())))
    }

    as_op!();
}

/// Replaces every plain depthwise `Conv` of `model` by [`Depthwise`]; returns how many.
pub fn replace_depthwise(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Conv>() else {
            continue;
        };
        if node.inputs.len() != 3 {
            continue;
        }
        let fact = |i: usize| model.outlet_fact(node.inputs[i]);
        let (Some(shape), Some(kernel), Some(bias)) = (
            fact(0)?.shape.as_concrete().map(|s| s.to_vec()),
            fact(1)?.konst.clone(),
            fact(2)?.konst.clone(),
        ) else {
            continue;
        };
        let Some(op) = Depthwise::from_conv(conv, &shape, &kernel, &bias) else {
            continue;
        };
        let mut patch = TypedModelPatch::default();
        let tap = patch.tap_model(model, node.inputs[0])?;
        let out = patch.wire_node(&node.name, op, &[tap])?;
        patch.shunt_outside(model, OutletId::new(id, 0), out[0])?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::{default_models_dir, model};

    /// Each model gives the same outputs with tract's own depthwise convolution and ours,
    /// on a real face.
    #[test]
    fn replaced_models_match_tracts_own_convolution() {
        let photo = image::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/clean/obama.jpg"
        ))
        .unwrap();
        for (file, side) in [
            ("blazeface_back_256.onnx", 256),
            ("blazeface_front_128.onnx", 128),
            ("mobilefacenet.onnx", 112),
        ] {
            let path = default_models_dir().join(file);
            let shape = [1, side, side, 3];
            let rgb = photo
                .resize_exact(
                    side as u32,
                    side as u32,
                    image::imageops::FilterType::Triangle,
                )
                .into_rgb8();
            let input: Tensor = tract_ndarray::Array4::from_shape_fn(shape, |(_, y, x, c)| {
                rgb.get_pixel(x as u32, y as u32).0[c] as f32 / 127.5 - 1.0
            })
            .into();
            let reference = model::typed(&path, &shape)
                .unwrap()
                .into_optimized()
                .unwrap()
                .into_runnable()
                .unwrap();
            let mut replaced_model = model::typed(&path, &shape).unwrap();
            assert!(
                replace_depthwise(&mut replaced_model).unwrap() > 0,
                "{file} has depthwise convolutions"
            );
            let fast = replaced_model
                .into_optimized()
                .unwrap()
                .into_runnable()
                .unwrap();
            let want = reference.run(tvec!(input.clone().into())).unwrap();
            let got = fast.run(tvec!(input.into())).unwrap();
            for (w, g) in want.iter().zip(&got) {
                let (w, g) = (w.as_slice::<f32>().unwrap(), g.as_slice::<f32>().unwrap());
                let scale = w.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                let worst = w
                    .iter()
                    .zip(g)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    worst <= 1e-4 * scale,
                    "{file}: differs by {worst} (scale {scale})"
                );
            }
        }
    }
}
