//! A fast 2×2, stride-2 max pooling for channels-first tensors.
//!
//! BlazeFace halves its feature maps on the residual path with this pooling, which tract
//! 0.22 evaluates with a generic per-output loop (a tenth of the detector's time).
//! [`MaxPool2`] takes the maximum of each row pair along whole rows, then of each column
//! pair.

use tract_nnef::prelude::*;
use tract_nnef::tract_core::internal::*;
use tract_nnef::tract_core::ops::cnn::MaxPool;
use tract_nnef::tract_core::ops::nn::DataFormat;

use super::Substitution;
use super::kernel::unary_op;

/// 2×2 max pooling with stride 2 and no padding, f32, channels first.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPool2 {
    /// Input shape: `[(1,) C, H, W]`.
    input: TVec<usize>,
}

impl MaxPool2 {
    fn output_shape(&self) -> TVec<usize> {
        let mut shape = self.input.clone();
        let rank = shape.len();
        shape[rank - 2] /= 2;
        shape[rank - 1] /= 2;
        shape
    }

    fn run(&self, input: &[f32], out: &mut [f32]) {
        let rank = self.input.len();
        let (h, w) = (self.input[rank - 2], self.input[rank - 1]);
        let (oh, ow) = (h / 2, w / 2);
        let mut pairs = vec![0.0f32; 2 * ow];
        for (plane, out_plane) in input.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
            for (oy, row) in out_plane.chunks_exact_mut(ow).enumerate() {
                let (top, bottom) = (
                    &plane[2 * oy * w..][..2 * ow],
                    &plane[(2 * oy + 1) * w..][..2 * ow],
                );
                for ((m, a), b) in pairs.iter_mut().zip(top).zip(bottom) {
                    *m = a.max(*b);
                }
                for (o, pair) in row.iter_mut().zip(pairs.chunks_exact(2)) {
                    *o = pair[0].max(pair[1]);
                }
            }
        }
    }
}

unary_op!(MaxPool2, "MaxPool2Fast");

/// [`MaxPool2`] in place of `node`, if it is a plain 2×2, stride-2 f32 max pooling of a
/// channels-first tensor, without padding.
pub fn find(model: &TypedModel, node: &TypedNode) -> Option<Substitution> {
    let pool = node.op_as::<MaxPool>()?;
    let x = *node.inputs.first()?;
    let fact = model.outlet_fact(x).ok()?;
    let spec = &pool.pool_spec;
    let shape = fact.shape.as_concrete()?;
    let rank = shape.len();
    let padding = spec.computed_padding(&shape[rank - 2..]);
    let plain = pool.with_index_outputs.is_none()
        && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        && fact.datum_type == f32::datum_type()
        && spec.kernel_shape.as_slice() == [2, 2]
        && spec.strides().as_ref() == [2, 2]
        && spec.dilations().as_ref() == [1, 1]
        && padding
            .iter()
            .zip(&shape[rank - 2..])
            .all(|(p, len)| p.pad_before == 0 && p.convoluted == len / 2);
    plain.then(|| Substitution {
        last: node.id,
        inputs: tvec![x],
        op: Box::new(MaxPool2 {
            input: shape.into(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::kernel::noise;
    use super::*;

    /// The op against the definition, on even and odd sizes (the last odd row and column
    /// are dropped, as without padding).
    #[test]
    fn matches_the_definition() {
        for (c, h, w) in [(3, 4, 6), (2, 7, 9), (5, 16, 34)] {
            let op = MaxPool2 {
                input: tvec![1, c, h, w],
            };
            let input = noise(c * h * w, 5);
            let (oh, ow) = (h / 2, w / 2);
            let mut got = vec![f32::NAN; c * oh * ow];
            op.run(&input, &mut got);
            for ch in 0..c {
                for y in 0..oh {
                    for x in 0..ow {
                        let at =
                            |dy: usize, dx: usize| input[(ch * h + 2 * y + dy) * w + 2 * x + dx];
                        let want = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                        assert_eq!(
                            got[(ch * oh + y) * ow + x],
                            want,
                            "{c}×{h}×{w} at ({ch}, {y}, {x})"
                        );
                    }
                }
            }
        }
    }
}
