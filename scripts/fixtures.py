"""Build the test fixtures in tests/fixtures/ from public-domain photos.

Usage: fixtures.py PHOTOS_DIR MEASURE_BIN OUT_DIR
  PHOTOS_DIR  the photos gathered by scripts/sources.sh
  MEASURE_BIN the `measure` example binary (`--faces-json` prints boxes and keypoints)
  OUT_DIR     tests/fixtures

Only public-domain sources are used (US government portraits from face_recognition,
NASA and CC0 images from scikit-image). Every synthetic case (occluders, crops, tiny
faces, greyscale, pairs, EXIF rotation) is drawn here from detected keypoints, and
manifest.json records what each file must trigger.
"""

import json
import random
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

PHOTOS, FACES_BIN, OUT = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
# Distinct public-domain portraits of real people.
PORTRAITS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png"]
NO_FACE = ["coffee.png", "rocket.jpg", "chelsea.png", "hubble_deep_field.jpg", "brick.png", "grass.png",
           "gravel.png", "chessboard_RGB.png", "color.png"]
rng = random.Random(7)
manifest = []


def faces(img):
    tmp = OUT / "_probe.png"
    img.save(tmp)
    out = subprocess.run([FACES_BIN, "--faces-json", str(tmp)], check=True, capture_output=True, text=True).stdout
    tmp.unlink()
    return json.loads(out)


def save(img, category, name, triggers, scenario="SELFIE", fmt="jpg"):
    path = OUT / category / f"{name}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jpg":
        img.convert("RGB").save(path, quality=88)
    else:
        img.save(path)
    manifest.append({"file": f"{category}/{name}.{fmt}", "scenario": scenario, "triggers": triggers})


def portrait(name):
    """A selfie-like framing around the main face, at most 640 px on its long side."""
    img = ImageOps.exif_transpose(Image.open(PHOTOS / name)).convert("RGB")
    face = max(faces(img), key=lambda f: f["box"][2] - f["box"][0])
    x0, y0, x1, y1 = face["box"]
    w = x1 - x0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = (max(0, cx - 1.4 * w), max(0, cy - 1.6 * w), min(img.width, cx + 1.4 * w), min(img.height, cy + 1.9 * w))
    img = img.crop(tuple(int(v) for v in box))
    img.thumbnail((640, 640), Image.LANCZOS)
    return img


def geometry(img):
    f = max(faces(img), key=lambda f: f["box"][2] - f["box"][0])
    kp = f["keypoints"]
    eye_r, eye_l, nose, mouth, ear_r, ear_l = kp
    d = ((eye_l[0] - eye_r[0]) ** 2 + (eye_l[1] - eye_r[1]) ** 2) ** 0.5
    return f, eye_r, eye_l, nose, mouth, ear_r, ear_l, d


def skin_colour(img, eye_r, eye_l, d):
    """Mean colour of the forehead just above the eyes."""
    cx, cy = (eye_r[0] + eye_l[0]) / 2, (eye_r[1] + eye_l[1]) / 2 - 0.35 * d
    patch = img.crop((int(cx - 0.2 * d), int(cy - 0.1 * d), int(cx + 0.2 * d), int(cy + 0.1 * d)))
    return tuple(int(v) for v in patch.resize((1, 1), Image.BOX).getpixel((0, 0)))


def mask(img, colour, pattern=False):
    f, eye_r, eye_l, nose, mouth, ear_r, ear_l, d = geometry(img)
    img = img.copy()
    draw = ImageDraw.Draw(img)
    bridge = ((eye_r[0] + eye_l[0]) / 2, (eye_r[1] + eye_l[1]) / 2 + 0.4 * d)
    chin = (mouth[0], mouth[1] + 0.85 * d)
    poly = [
        (ear_r[0] + 0.05 * d, ear_r[1] + 0.05 * d), bridge, (ear_l[0] - 0.05 * d, ear_l[1] + 0.05 * d),
        (ear_l[0] - 0.2 * d, mouth[1] + 0.45 * d), chin, (ear_r[0] + 0.2 * d, mouth[1] + 0.45 * d),
    ]
    draw.polygon(poly, fill=colour)
    shade = tuple(max(0, c - 35) for c in colour)
    for k in range(1, 4):  # pleats
        y = bridge[1] + k * (chin[1] - bridge[1]) / 4
        draw.line([(ear_r[0] + 0.3 * d, y), (ear_l[0] - 0.3 * d, y)], fill=shade, width=max(1, int(d / 25)))
    if pattern:
        for _ in range(40):
            x = rng.uniform(ear_r[0] + 0.3 * d, ear_l[0] - 0.3 * d)
            y = rng.uniform(bridge[1] + 0.1 * d, chin[1] - 0.2 * d)
            r = d * 0.06
            draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    return img


def sunglasses(img, bar=False):
    f, eye_r, eye_l, nose, mouth, ear_r, ear_l, d = geometry(img)
    img = img.copy()
    draw = ImageDraw.Draw(img)
    if bar:
        draw.rectangle((eye_r[0] - 0.5 * d, eye_r[1] - 0.25 * d, eye_l[0] + 0.5 * d, eye_l[1] + 0.25 * d), fill=(0, 0, 0))
        return img
    for (x, y) in (eye_r, eye_l):
        draw.ellipse((x - 0.42 * d, y - 0.3 * d, x + 0.42 * d, y + 0.32 * d), fill=(22, 22, 28))
        draw.ellipse((x - 0.25 * d, y - 0.2 * d, x - 0.05 * d, y - 0.1 * d), fill=(60, 60, 70))  # reflection
    draw.line([(eye_r[0] + 0.42 * d, eye_r[1] - 0.1 * d), (eye_l[0] - 0.42 * d, eye_l[1] - 0.1 * d)], fill=(22, 22, 28), width=max(2, int(d / 12)))
    return img


def hand(img):
    """Four fingers in the person's own skin tone across the mouth and nose."""
    f, eye_r, eye_l, nose, mouth, ear_r, ear_l, d = geometry(img)
    skin = skin_colour(img, eye_r, eye_l, d)
    dark = tuple(int(c * 0.7) for c in skin)
    img = img.copy()
    draw = ImageDraw.Draw(img)
    thick = 0.26 * d
    top = nose[1] - 0.05 * d
    for k in range(4):
        y = top + k * thick
        x0, x1 = ear_r[0] - 0.1 * d, ear_l[0] - 0.15 * d + k * 0.05 * d
        draw.rounded_rectangle((x0, y, x1, y + thick), radius=thick / 2, fill=skin, outline=dark, width=max(1, int(d / 30)))
        draw.line([(x1 - 0.5 * d, y + thick * 0.5), (x1 - 0.35 * d, y + thick * 0.45)], fill=dark, width=1)  # knuckle crease
    return img.filter(ImageFilter.GaussianBlur(0.6))


def tiny(img, background, eye_distance=16):
    _, eye_r, eye_l, *_rest, d = geometry(img)
    scale = eye_distance / d
    small = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.LANCZOS)
    canvas = background.copy()
    canvas.paste(small, (rng.randrange(0, canvas.width - small.width), rng.randrange(0, canvas.height - small.height)))
    return canvas


def cut(img, side, fraction=0.33):
    f = geometry(img)[0]
    x0, y0, x1, y1 = f["box"]
    w, h = x1 - x0, y1 - y0
    box = {
        "left": (x0 + fraction * w, 0, img.width, img.height),
        "right": (0, 0, x1 - fraction * w, img.height),
        "top": (0, y0 + fraction * h, img.width, img.height),
        "bottom": (0, 0, img.width, y1 - fraction * h),
    }[side]
    return img.crop(tuple(int(v) for v in box))


def side_by_side(a, b):
    h = min(a.height, b.height)
    a = a.resize((int(a.width * h / a.height), h))
    b = b.resize((int(b.width * h / b.height), h))
    out = Image.new("RGB", (a.width + b.width, h))
    out.paste(a, (0, 0))
    out.paste(b, (a.width, 0))
    out.thumbnail((960, 960))
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    bases = {Path(n).stem: portrait(n) for n in PORTRAITS}
    backgrounds = [Image.open(PHOTOS / n).convert("RGB").resize((1280, 960)) for n in ("coffee.png", "rocket.jpg")]
    for name, img in bases.items():
        save(img, "clean", name, [])
        save(ImageOps.mirror(img), "clean", f"{name}_mirror", [])
        save(ImageEnhance.Brightness(img).enhance(0.7), "clean", f"{name}_dark", [])
        save(ImageEnhance.Brightness(img).enhance(1.25), "clean", f"{name}_bright", [])
        save(img.rotate(8, resample=Image.BICUBIC, fillcolor=(128, 128, 128)), "clean", f"{name}_tilt", [])
        save(ImageOps.grayscale(img), "grey", name, ["imageBlackAndWhite"])
        for colour, c in [("blue", (120, 170, 215)), ("white", (235, 235, 235)), ("black", (25, 25, 28)), ("green", (60, 140, 90))]:
            save(mask(img, c), "occluded", f"{name}_mask_{colour}", ["faceIsOccluded"])
        save(mask(img, (200, 60, 80), pattern=True), "occluded", f"{name}_mask_pattern", ["faceIsOccluded"])
        save(sunglasses(img), "occluded", f"{name}_sunglasses", ["faceIsOccluded"])
        save(sunglasses(img, bar=True), "occluded", f"{name}_eyebar", ["faceIsOccluded"])
        save(hand(img), "occluded", f"{name}_hand", ["faceIsOccluded"])
        for side in ("left", "right", "top", "bottom"):
            save(cut(img, side), "partial", f"{name}_{side}", ["facePartial"])
        save(tiny(img, backgrounds[len(manifest) % 2]), "small", name, ["faceTooSmall"])
    names = list(bases)
    for a, b in zip(names, names[1:] + names[:1]):
        save(side_by_side(bases[a], bases[b]), "multiple", f"{a}_{b}", ["faceMultiple"])
    for n in ("obama_partial_face.jpg", "obama_partial_face2.jpg"):
        img = Image.open(PHOTOS / n).convert("RGB")
        img.thumbnail((640, 640))
        save(img, "partial", Path(n).stem, ["facePartial"])
    for n in NO_FACE:
        img = Image.open(PHOTOS / n).convert("RGB")
        img.thumbnail((640, 640))
        save(img, "missing", Path(n).stem, ["faceMissing"])
    save(Image.new("RGB", (640, 480), (180, 170, 160)), "missing", "blank_wall", ["faceMissing"])
    # A person below the chin: shoulders and suit, no face.
    body = bases["obama3"]
    chin = geometry(body)[0]["box"][3]
    save(body.crop((0, int(chin) + 10, body.width, body.height)), "missing", "obama3_body", ["faceMissing"])
    # An identity-document layout: the main portrait and a faded "ghost" copy at half size.
    # The ghost is half the portrait's size: smaller than a face that counts towards
    # faceMultiple in any scenario, so the card enrols as a document and as a selfie.
    for name in ("obama", "biden"):
        main = bases[name].copy()
        main.thumbnail((360, 450))
        ghost = ImageOps.grayscale(main).convert("RGB").resize((int(main.width * 0.5), int(main.height * 0.5)))
        ghost = Image.blend(ghost, Image.new("RGB", ghost.size, (225, 220, 200)), 0.15)
        card = Image.new("RGB", (main.width + ghost.width + 260, main.height + 60), (225, 220, 200))
        card.paste(main, (30, 30))
        card.paste(ghost, (main.width + 200, card.height - ghost.height - 40))
        save(card, "document", f"{name}_card", [], scenario="DOCUMENT")
        manifest.append({"file": f"document/{name}_card.jpg", "scenario": "SELFIE", "triggers": []})
    # A greyscale photograph of a person: black and white (SELFIE), fine as a trusted portrait.
    camera = Image.open(PHOTOS / "camera.png").convert("RGB")
    save(camera, "grey", "camera", ["imageBlackAndWhite", "faceTooSmall"])
    # EXIF: the pixels are stored rotated 90°; orientation tag 6 says how to turn them back.
    rotated = bases["obama"].rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = OUT / "exif" / "obama_orientation6.jpg"
    path.parent.mkdir(exist_ok=True)
    rotated.save(path, quality=88, exif=exif.tobytes())
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(manifest)} fixtures in {OUT}")


if __name__ == "__main__":
    main()
