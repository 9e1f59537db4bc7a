#!/usr/bin/env python3
"""Compares runs of `examples/outputs` with model variants against the f32 run on the
same photos and prints one Markdown table row per variant. A variant is kept only if,
on every photo, it finds the faces f32 finds (IoU ≥ 0.5) and no others, gives the same
six filter outcomes in every scenario, and embeds the primary face with a cosine of at
least 0.98 to f32's.
Usage: variants.py F32.jsonl LABEL=CANDIDATE.jsonl...  (a candidate that failed to run
gives CANDIDATE.err instead, whose deepest cause is shown)"""
import json
import os
import sys

MIN_COSINE, MIN_IOU = 0.98, 0.5


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)


def row(label, ref, path):
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        err = path.rsplit(".", 1)[0] + ".err"
        lines_ = open(err).read().splitlines() if os.path.exists(err) else []
        causes = [l.split(":", 1)[1].strip() for l in lines_ if l.strip()[:1].isdigit()]
        reason = causes[-1] if causes else (lines_ or ["no output"])[-1]
        return f"| {label} | tract fails: {reason} | | | | no |"
    got = lines(path)
    assert [g["file"] for g in got] == [r["file"] for r in ref], f"{path}: other photos"
    faces = found = extra = filters = lost = 0
    cosines = []
    for r, g in zip(ref, got):
        matched = [any(iou(f["box"], c["box"]) >= MIN_IOU for c in g["faces"]) for f in r["faces"]]
        faces += len(r["faces"])
        found += sum(matched)
        extra += sum(not any(iou(c["box"], f["box"]) >= MIN_IOU for f in r["faces"]) for c in g["faces"])
        filters += r["filters"] != g["filters"]
        if r["embedding"] and g["embedding"]:
            cosines.append(sum(x * y for x, y in zip(r["embedding"], g["embedding"])))
        else:
            lost += bool(r["embedding"]) != bool(g["embedding"])
    worst, mean = min(cosines), sum(cosines) / len(cosines)
    kept = found == faces and not extra and not filters and not lost and worst >= MIN_COSINE
    cos = f"{worst:.4f} / {mean:.4f}" + (f"; {lost} in one run only" if lost else "")
    return (f"| {label} | {found}/{faces} | {extra} | {filters} of {len(ref)} | {cos} | "
            f"{'yes' if kept else 'no'} |")


def main(reference, candidates):
    ref = lines(reference)
    print(f"| variant | f32's faces found | other faces | photos whose filter outcomes differ "
          f"| embedding cosine to f32, worst / mean ({sum(bool(r['embedding']) for r in ref)} faces) | accuracy holds |")
    print("|---|---|---|---|---|---|")
    for arg in candidates:
        label, path = arg.split("=", 1)
        print(row(label, ref, path))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
