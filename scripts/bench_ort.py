"""onnxruntime (one thread) on the same inputs as the agent's benchmarks, as JSON lines.

`bench_ort.py MODELS IMAGES decode`: decoding latency, as `bench stages` measures it.
`bench_ort.py MODELS IMAGES models RUNS`: the run times of each model, as `bench models`.
"""

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

RUNS = 40
models, images, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]


def samples(runs, f):
    for _ in range(3):
        f()
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        ms.append((time.perf_counter() - t) * 1e3)
    return ms


def timed(f):
    ms = sorted(samples(RUNS, f))
    return ms[RUNS // 2], ms[RUNS * 9 // 10]


opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
MODELS = [
    ("blazeface_front_128.onnx", (1, 128, 128, 3)),
    ("blazeface_back_256.onnx", (1, 256, 256, 3)),
    ("mobilefacenet.onnx", (1, 112, 112, 3)),
    ("face_anti_spoofing.onnx", (1, 256, 256, 3)),
]
for name, shape in MODELS if mode == "models" else []:
    sess = ort.InferenceSession(str(models / name), opts, providers=["CPUExecutionProvider"])
    _, h, w, c = shape
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    data = (((x * 7 + y * 3 + ch) % 255) / 127.5 - 1.0).astype(np.float32)[None]
    feed = {sess.get_inputs()[0].name: data}
    ms = samples(int(sys.argv[4]), lambda: sess.run(None, feed))
    print(json.dumps({"kind": "model", "model": name, "samples_ms": ms}))
for size in ("640x480", "1920x1080") if mode == "decode" else []:
    jpeg = (images / f"selfie_{size}.jpg").read_bytes()
    p50, p90 = timed(lambda: np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")))
    print(json.dumps({"kind": "stage", "image": size, "stage": "decode", "p50_ms": p50, "p90_ms": p90}))
