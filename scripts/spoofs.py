#!/usr/bin/env python3
"""Simulated presentation attacks: each portrait given is turned into what a camera would
see of it printed on paper or shown on a screen, at two strengths. We have no real spoof
captures; these imitate the traces a recapture leaves (halftone dots, a screen's subpixel
grid and the moiré it makes with the camera's sampling, lost colour and contrast, a
tint, defocus, JPEG) and nothing else: they say how the model reacts to those traces,
not how it fares against a real attacker.

Usage: spoofs.py OUT_DIR PORTRAIT...  (writes OUT_DIR/KIND/NAME_STRENGTH.jpg)"""
import os
import sys

import numpy as np
from PIL import Image, ImageFilter

KINDS = ("print", "screen", "faded")
STRENGTHS = (1, 2)


def as_image(a):
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def recapture(img, rng, blur, angle, quality):
    """The camera seeing the medium: slightly turned, defocused, JPEG-compressed."""
    img = img.rotate(angle, resample=Image.BILINEAR, expand=False, fillcolor=(235, 235, 230))
    img = img.filter(ImageFilter.GaussianBlur(blur))
    a = np.asarray(img, dtype=np.float32)
    a += rng.normal(0, 2.0, a.shape)  # sensor noise
    return as_image(a), quality


def halftone(a, cell, angles):
    """Each channel printed as a dot screen: a dot per `cell` pixels, on its own angle,
    with an area proportional to the ink (1 − value)."""
    h, w, _ = a.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty_like(a)
    for c, angle in enumerate(angles):
        t = np.deg2rad(angle)
        u = (x * np.cos(t) + y * np.sin(t)) / cell
        v = (-x * np.sin(t) + y * np.cos(t)) / cell
        # Distance to the dot centre in cell units, 0 at the centre, ~0.7 at a corner.
        d = np.hypot(u - np.round(u), v - np.round(v))
        ink = 1.0 - a[..., c] / 255.0
        radius = np.sqrt(ink / np.pi)  # dot area = ink coverage
        out[..., c] = np.where(d < radius, 0.0, 255.0)
    return out


def printed(img, rng, strength):
    a = np.asarray(img, dtype=np.float32)
    cell = 3.0 + 1.5 * strength
    a = halftone(a, cell, (15, 75, 0))
    # Paper and ink: the white is off-white, the black is grey; a warm tint.
    a = 40 + a * (200 / 255) * np.array([1.0, 0.97, 0.9])
    return recapture(as_image(a), rng, blur=0.6 + 0.4 * strength, angle=2.0 * strength,
                     quality=85)


def screen(img, rng, strength):
    """The portrait on an RGB-stripe display: each pixel three coloured subpixels with
    dark gaps between rows; the camera averages that grid over its own, slightly
    mismatched pixels, which leaves moiré fringes."""
    w, h = img.size
    pitch = 3  # subpixels per pixel
    a = np.asarray(img.resize((w * pitch, h * pitch), Image.NEAREST), dtype=np.float32)
    grid = np.zeros((h * pitch, w * pitch, 3), np.float32)
    for c in range(3):
        grid[:, c::pitch, c] = 3.0
    grid[pitch - 1::pitch] *= 0.4  # the gap between pixel rows
    depth = 0.3 * strength  # how much of the grid survives the camera's optics
    a = a * ((1 - depth) + depth * grid)
    # A blue-ish, low-contrast panel with a glare gradient.
    a = 20 + a * np.array([0.88, 0.95, 1.05]) + np.linspace(0, 25 * strength, a.shape[1])[None, :, None]
    shot = as_image(a).rotate(1.0 * strength, resample=Image.BILINEAR, fillcolor=(10, 10, 12))
    # The camera's pixels: a little larger than the screen's, averaged (box filter).
    scale = 1.0 / (pitch * 1.07)
    shot = shot.resize((int(shot.width * scale), int(shot.height * scale)), Image.BOX)
    return recapture(shot.resize((w, h), Image.BILINEAR), rng, blur=0.4 * strength,
                     angle=0.0, quality=80)


def faded(img, rng, strength):
    """Colour and contrast loss alone: a washed-out, soft copy."""
    a = np.asarray(img, dtype=np.float32)
    grey = a.mean(axis=2, keepdims=True)
    a = grey + (a - grey) * (1.0 - 0.3 * strength)  # saturation
    a = 128 + (a - 128) * (1.0 - 0.2 * strength) + 10 * strength  # contrast, black level
    return recapture(as_image(a), rng, blur=0.8 * strength, angle=0.0, quality=75)


def main(out, portraits):
    rng = np.random.default_rng(7)
    for kind in KINDS:
        os.makedirs(os.path.join(out, kind), exist_ok=True)
    for path in portraits:
        img = Image.open(path).convert("RGB")
        name = os.path.splitext(os.path.basename(path))[0]
        for kind, make in zip(KINDS, (printed, screen, faded)):
            for s in STRENGTHS:
                spoof, quality = make(img, rng, s)
                spoof.save(os.path.join(out, kind, f"{name}_{s}.jpg"), quality=quality)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
