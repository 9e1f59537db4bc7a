#!/usr/bin/env python3
"""Writes int8 versions of the detector and the embedder with onnxruntime's static
quantisation (QOperator form: QLinearConv, which tract reads), calibrated on the inputs
each model really gets: the detector on the photos resized to 256×256, the embedder on
the aligned faces `examples/outputs --aligned` wrote. Only the convolutions are
quantised (onnxruntime's other quantised operators are its own extensions, which tract
does not read), and not the first one (tract 0.22 cannot compile it quantised, nor any
depthwise convolution quantised per channel, so `per-channel` leaves those in f32 too).
Usage: quantize.py MODELS_DIR ALIGNED_DIR OUT_DIR per-channel|per-tensor PHOTO..."""
import glob
import os
import sys

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
from PIL import Image


class Inputs(CalibrationDataReader):
    def __init__(self, name, arrays):
        self.items = iter({name: a[None]} for a in arrays)

    def get_next(self):
        return next(self.items, None)


def rgb(path, side):
    return np.asarray(Image.open(path).convert("RGB").resize((side, side)), dtype=np.float32)


def main(models, aligned, out, mode, photos):
    faces = sorted(glob.glob(os.path.join(aligned, "*.png")))
    assert faces, f"no aligned faces in {aligned}"
    inputs = {
        "blazeface_back_256": [rgb(p, 256) / 127.5 - 1 for p in photos],
        "mobilefacenet": [(rgb(p, 112) - 127.5) / 128 for p in faces],
    }
    os.makedirs(out, exist_ok=True)
    for name, arrays in inputs.items():
        source = os.path.join(models, f"{name}.onnx")
        graph = onnx.load(source).graph
        convs = [n for n in graph.node if n.op_type == "Conv"]
        grouped = [n.name for n in convs
                   if any(a.name == "group" and a.i > 1 for a in n.attribute)]
        excluded = [convs[0].name] + (grouped if mode == "per-channel" else [])
        quantize_static(source, os.path.join(out, f"{name}.onnx"),
                        Inputs(graph.input[0].name, arrays),
                        quant_format=QuantFormat.QOperator, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=excluded, per_channel=mode == "per-channel",
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        print(f"{name}: {len(convs) - len(excluded)} of {len(convs)} convolutions quantised, "
              f"calibrated on {len(arrays)} inputs", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 6 or sys.argv[4] not in ("per-channel", "per-tensor"):
        sys.exit(__doc__)
    main(*sys.argv[1:5], sys.argv[5:])
