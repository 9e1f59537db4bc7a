//! Loading ONNX files into optimised tract plans.

use std::path::Path;

use tract_onnx::prelude::*;

pub mod depthwise;
mod graph;
mod kernel;
pub mod maxpool;
pub mod pointwise;
pub mod prelu;
pub mod stem;

/// Makes the C allocator keep freed memory for reuse instead of handing it back to the
/// kernel. tract allocates every intermediate tensor of every run, and glibc maps blocks
/// of more than 128 KiB afresh each time, then unmaps them at free, so each detector run
/// took about 3 000 page faults: half its time. Blocks up to 32 MiB now come from the
/// heap and stay there, in one arena shared by all threads, so what is kept stays near
/// the peak of the enrolments running at once (with an arena per thread it grew with the
/// worker count). Call it once, at start-up, before other threads start.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; called before other threads run.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// An optimised, immutable plan; `run` takes `&self`, so one plan serves all threads.
pub type Plan = TypedRunnableModel<TypedModel>;

/// Loads `path` with its single input fixed to `shape` (f32) and optimises it, with the
/// operators where tract 0.22 is slow on our models replaced by ours ([`depthwise`],
/// [`pointwise`], [`stem`], [`maxpool`], [`prelu`]).
pub fn load(path: &Path, shape: &[usize]) -> TractResult<Plan> {
    let mut model = typed(path, shape)?;
    let mut ours: Vec<(&str, Finder)> = vec![
        ("depthwise convolutions", depthwise::find),
        ("max poolings", maxpool::find),
        ("PReLUs", prelu::find),
    ];
    // AVX2 code; elsewhere tract's own hand-written kernels (NEON on ARM) are better.
    if kernel::avx2_fma() {
        ours.push(("pointwise convolutions", pointwise::find));
        ours.push(("stem convolutions", stem::find));
    }
    for (what, find) in ours {
        let replaced = rewrite(&mut model, find)?;
        log::debug!("{}: {replaced} {what} on our operator", path.display());
    }
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

/// One of our operators found in place of some of a model's nodes: `op` applied to
/// `inputs` computes the output of node `last`.
pub struct Substitution {
    pub last: usize,
    pub inputs: TVec<OutletId>,
    pub op: Box<dyn TypedOp>,
}

/// Finds where one of our operators can take the place of `node` (and the nodes after it).
type Finder = fn(&TypedModel, &TypedNode) -> Option<Substitution>;

/// Applies every substitution `find` sees in `model`, node by node in evaluation order;
/// returns how many. The nodes left without readers are dropped when the model is
/// optimised.
fn rewrite(model: &mut TypedModel, find: Finder) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let Some(found) = find(model, model.node(id)) else {
            continue;
        };
        let name = model.node(found.last).name.clone();
        let mut patch = TypedModelPatch::default();
        let taps = found
            .inputs
            .iter()
            .map(|i| patch.tap_model(model, *i))
            .collect::<TractResult<TVec<_>>>()?;
        let out = patch.wire_node(name, found.op, &taps)?;
        patch.shunt_outside(model, OutletId::new(found.last, 0), out[0])?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::default_models_dir;

    /// Each model gives the same outputs on our operators as on tract's own, on a real
    /// face, and our operators are really in use.
    #[test]
    fn our_operators_match_tracts_on_a_real_face() {
        let photo = image::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/clean/obama.jpg"
        ))
        .unwrap();
        // Ours everywhere, then ours on AVX2 only.
        let blazeface = [
            &["DepthwiseFast", "MaxPool2Fast"][..],
            &["PointwiseFast", "StemFast"],
        ];
        for (file, side, [ours, avx2]) in [
            ("blazeface_back_256.onnx", 256, blazeface),
            ("blazeface_front_128.onnx", 128, blazeface),
            (
                "mobilefacenet.onnx",
                112,
                [&["DepthwiseFast", "PReluFast"], &["PointwiseFast"]],
            ),
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
            let reference = typed(&path, &shape)
                .and_then(|m| m.into_optimized()?.into_runnable())
                .unwrap();
            let fast = load(&path, &shape).unwrap();
            let names: Vec<String> = fast
                .model()
                .nodes()
                .iter()
                .map(|n| n.op().name().to_string())
                .collect();
            let avx2 = avx2.iter().filter(|_| kernel::avx2_fma());
            for op in ours.iter().chain(avx2) {
                assert!(names.iter().any(|n| n == op), "{file} runs {op}");
            }
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
