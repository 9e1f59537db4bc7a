//! Loading models into optimised tract plans: from ONNX (the `onnx` feature) or from the
//! NNEF archives [`export`] writes, which a build without ONNX code reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_nnef::prelude::*;
use tract_nnef::tract_core::floats::FloatPrecisionTranslator;
use tract_nnef::tract_core::internal::{bail, format_err};
use tract_nnef::tract_core::transform::ModelTransform;

pub mod depthwise;
mod graph;
mod kernel;
pub mod maxpool;
mod nnef;
pub mod pointwise;
pub mod prelu;
pub mod stem;

/// A tensor's f32 values as a slice (tract 0.23 reads tensors through views).
pub trait Floats {
    fn floats(&self) -> TractResult<&[f32]>;
    fn floats_mut(&mut self) -> TractResult<&mut [f32]>;
}

impl Floats for Tensor {
    fn floats(&self) -> TractResult<&[f32]> {
        self.try_as_plain_ram()?.as_slice::<f32>()
    }

    fn floats_mut(&mut self) -> TractResult<&mut [f32]> {
        self.to_plain_array_view_mut::<f32>()?
            .into_slice()
            .ok_or_else(|| format_err!("tensor is not contiguous"))
    }
}

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

/// The arithmetic a model runs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// As trained.
    #[default]
    F32,
    /// Half precision throughout (tract's translation of the f32 graph): as accurate,
    /// but with tract 0.22 slower than f32 even on CPUs with FP16 arithmetic
    /// (models/README.md, "Variants").
    F16,
}

impl Precision {
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::F16];

    /// The setting's value, e.g. `f16`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Precision, String> {
        let s = s.trim();
        Precision::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Precision::ALL.map(Precision::as_str).to_vec();
                format!(
                    "unknown model precision '{s}' (known: {})",
                    known.join(", ")
                )
            })
    }
}

/// An optimised, immutable plan taking and giving f32 tensors, whatever it computes in;
/// `run` takes `&self`, so one plan serves all threads.
pub struct Plan {
    plan: Arc<TypedRunnableModel>,
    input: DatumType,
}

impl Plan {
    /// Optimises `model` into a plan.
    fn new(model: TypedModel) -> TractResult<Plan> {
        let input = model.input_fact(0)?.datum_type;
        Ok(Plan {
            plan: model.into_optimized()?.into_runnable()?,
            input,
        })
    }

    /// Runs the plan on `input` (f32); its outputs, as f32. Casts only where the plan
    /// computes in another type.
    pub fn run(&self, input: Tensor) -> TractResult<TVec<Tensor>> {
        let input = cast(input, self.input)?;
        self.plan
            .run(tvec!(input.into()))?
            .into_iter()
            .map(|t| cast(t.into_tensor(), f32::datum_type()))
            .collect()
    }

    /// The runnable graph, for profiling and tests.
    pub fn runnable(&self) -> &Arc<TypedRunnableModel> {
        &self.plan
    }
}

fn cast(t: Tensor, to: DatumType) -> TractResult<Tensor> {
    if t.datum_type() == to {
        Ok(t)
    } else {
        Ok(t.cast_to_dt(to)?.into_owned())
    }
}

/// Loads `path` with its single input fixed to `shape` (f32), translates it to
/// `precision` and optimises it, with the operators where tract 0.22 was slow on our
/// models (not measured again against 0.23's) replaced by ours ([`depthwise`],
/// [`pointwise`], [`stem`], [`maxpool`], [`prelu`]; f32 only).
pub fn load(
    path: &Path,
    shape: &[usize],
    outputs: &[&str],
    precision: Precision,
) -> TractResult<Plan> {
    let mut model = typed(path, shape, outputs)?;
    if precision == Precision::F16 {
        FloatPrecisionTranslator::new(f32::datum_type(), f16::datum_type())
            .transform(&mut model)?;
    }
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
    Plan::new(model)
}

/// Extension of the NNEF archives (tract's dialect, uncompressed tar).
pub const NNEF: &str = "nnef.tar";

/// The file of model `name` in `dir`: its NNEF archive if there is one, else (with the
/// `onnx` feature) its ONNX file.
pub fn file(dir: &Path, name: &str) -> TractResult<PathBuf> {
    let nnef = dir.join(format!("{name}.{NNEF}"));
    let onnx = dir.join(format!("{name}.onnx"));
    match (nnef.exists(), onnx.exists()) {
        (true, _) => Ok(nnef),
        (false, true) if cfg!(feature = "onnx") => Ok(onnx),
        (false, true) => bail!(
            "{} is missing: this build reads NNEF models only (write them with \
             `recognize-agent export-models` on a build with ONNX support)",
            nnef.display()
        ),
        (false, false) => bail!("no model {name} in {}", dir.display()),
    }
}

/// Loads `path` with its single input fixed to `shape`, decluttered, not optimised. Its
/// outputs are its own, then the inner tensors named in `outputs` (an NNEF archive holds
/// them already, as [`export`] wrote it).
pub fn typed(path: &Path, shape: &[usize], outputs: &[&str]) -> TractResult<TypedModel> {
    let model = if path.extension().is_some_and(|e| e == "onnx") {
        from_onnx(path, shape, outputs)
    } else {
        from_nnef(path, shape, outputs)
    };
    model.map_err(|e| e.context(format!("loading model {}", path.display())))
}

#[cfg(feature = "onnx")]
fn from_onnx(path: &Path, shape: &[usize], outputs: &[&str]) -> TractResult<TypedModel> {
    use tract_onnx::prelude::{Framework, InferenceModelExt};
    let mut model = tract_onnx::onnx()
        .model_for_path(path)?
        .with_input_fact(0, f32::fact(shape).into())?;
    if !outputs.is_empty() {
        let mut names: Vec<String> = model
            .output_outlets()?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        names.extend(outputs.iter().map(|o| o.to_string()));
        model.select_outputs_by_name(&names)?;
    }
    model.into_typed()?.into_decluttered()
}

#[cfg(not(feature = "onnx"))]
fn from_onnx(_: &Path, _: &[usize], _: &[&str]) -> TractResult<TypedModel> {
    bail!("this build reads NNEF models only")
}

fn from_nnef(path: &Path, shape: &[usize], outputs: &[&str]) -> TractResult<TypedModel> {
    let model = nnef::read(path)?;
    let fact = model.input_fact(0)?;
    if model.inputs.len() != 1
        || fact.datum_type != f32::datum_type()
        || fact.shape.as_concrete() != Some(shape)
    {
        bail!("the model's input is {fact:?}, not f32 {shape:?}");
    }
    if model.outputs.len() < 1 + outputs.len() {
        bail!("the archive lacks the outputs {outputs:?}: export the models again");
    }
    model.into_decluttered()
}

/// Writes model `name` of `from` (with its input fixed to `shape`) to `to` as an NNEF
/// archive, decluttered: what [`load`] would compute before optimising. Returns its path.
pub fn export(
    from: &Path,
    to: &Path,
    name: &str,
    shape: &[usize],
    outputs: &[&str],
) -> TractResult<PathBuf> {
    let model = typed(&file(from, name)?, shape, outputs)?;
    let path = to.join(format!("{name}.{NNEF}"));
    let out = std::fs::File::create(&path).map_err(|e| format_err!("{}: {e}", path.display()))?;
    nnef::framework()
        .write_to_tar(&model, std::io::BufWriter::new(out))?
        .flush()?;
    Ok(path)
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
    use crate::vision::{MODELS, default_models_dir};

    /// A real face resized to the model's `side`, scaled to [-1, 1].
    fn face(side: usize) -> Tensor {
        let photo = image::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/clean/obama.jpg"
        ))
        .unwrap();
        let rgb = photo
            .resize_exact(
                side as u32,
                side as u32,
                image::imageops::FilterType::Triangle,
            )
            .into_rgb8();
        tract_ndarray::Array4::from_shape_fn([1, side, side, 3], |(_, y, x, c)| {
            rgb.get_pixel(x as u32, y as u32).0[c] as f32 / 127.5 - 1.0
        })
        .into()
    }

    /// Runs both plans on `input`; their outputs agree within 1e-4 of the largest value.
    fn assert_same_outputs(what: &str, want: &Plan, got: &Plan, input: Tensor) {
        let want = want.run(input.clone()).unwrap();
        let got = got.run(input).unwrap();
        assert_eq!(want.len(), got.len(), "{what}");
        for (w, g) in want.iter().zip(&got) {
            let (w, g) = (w.floats().unwrap(), g.floats().unwrap());
            let scale = w.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let worst = w
                .iter()
                .zip(g)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                worst <= 1e-4 * scale,
                "{what}: differs by {worst} (scale {scale})"
            );
        }
    }

    /// Each model (ONNX or NNEF, whichever the models directory holds) gives the same
    /// outputs on our operators as on tract's own, on a real face, and our operators are
    /// really in use.
    #[test]
    fn our_operators_match_tracts_on_a_real_face() {
        // Ours everywhere, then ours on AVX2 only.
        let blazeface = [
            &["DepthwiseFast", "MaxPool2Fast"][..],
            &["PointwiseFast", "StemFast"],
        ];
        let mobilefacenet = [&["DepthwiseFast", "PReluFast"][..], &["PointwiseFast"]];
        let [
            (detector, detector_shape, detector_outputs),
            (embedder, embedder_shape, embedder_outputs),
            (liveness, liveness_shape, liveness_outputs),
        ] = MODELS;
        let mut models = vec![
            (detector, detector_shape, detector_outputs, blazeface),
            (embedder, embedder_shape, embedder_outputs, mobilefacenet),
            (
                liveness,
                liveness_shape,
                liveness_outputs,
                [&[][..], &["StemFast"]],
            ),
        ];
        if cfg!(feature = "onnx") {
            models.push(("blazeface_front_128", [1, 128, 128, 3], &[], blazeface));
        }
        for (name, shape, outputs, [ours, avx2]) in models {
            let path = file(&default_models_dir(), name).unwrap();
            // MobileFaceNet's NNEF form lays its 1×1 convolutions out channels-last, which
            // our pointwise operator does not take: tract's kernels run them there (as on
            // ARM, the only place that form is meant for).
            let nnef_mobilefacenet =
                name == embedder && path.extension().is_none_or(|e| e != "onnx");
            let avx2 = if nnef_mobilefacenet { &[][..] } else { avx2 };
            let reference = typed(&path, &shape, outputs).and_then(Plan::new).unwrap();
            let fast = load(&path, &shape, outputs, Precision::F32).unwrap();
            let names: Vec<String> = fast
                .runnable()
                .model()
                .nodes()
                .iter()
                .map(|n| n.op().name().to_string())
                .collect();
            let avx2 = avx2.iter().filter(|_| kernel::avx2_fma());
            for op in ours.iter().chain(avx2) {
                assert!(names.iter().any(|n| n == op), "{name} runs {op}");
            }
            assert_same_outputs(name, &reference, &fast, face(shape[1]));
        }
    }

    #[test]
    fn precisions_parse_from_their_names_only() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>(), Ok(p));
        }
        let err = "f64".parse::<Precision>().unwrap_err();
        assert!(err.contains("'f64'") && err.contains("f32, f16"), "{err}");
    }

    /// The NNEF archives `export` writes compute what the ONNX models compute.
    #[cfg(feature = "onnx")]
    #[test]
    fn nnef_exports_compute_what_the_onnx_models_compute() {
        let from = default_models_dir();
        let to = std::env::temp_dir().join(format!("recognize-agent-nnef-{}", std::process::id()));
        std::fs::create_dir_all(&to).unwrap();
        for (name, shape, outputs) in MODELS {
            let written = export(&from, &to, name, &shape, outputs).unwrap();
            assert_eq!(file(&to, name).unwrap(), written);
            let onnx = from.join(format!("{name}.onnx"));
            let onnx = load(&onnx, &shape, outputs, Precision::F32).unwrap();
            let nnef = load(&written, &shape, outputs, Precision::F32).unwrap();
            assert_same_outputs(name, &onnx, &nnef, face(shape[1]));
        }
        std::fs::remove_dir_all(&to).unwrap();
    }
}
