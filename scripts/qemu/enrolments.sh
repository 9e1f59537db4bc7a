# Sourced by scripts/bench-arm and scripts/profile-arm: the runs they count under
# qemu-user, `enroll` of a synthetic selfie after loading the models.

# enrolment_inputs DIR SIZE…: builds the qemu plugin (DIR/insn.so, scripts/qemu/insn.c),
# writes DIR/none.txt (not an image: the run stops after loading the models) and a selfie
# DIR/WxH.jpg of each size, and exports the agent's settings for the runs (the NNEF models
# of scripts/cross, keys in DIR, tract's NEON kernels on armv7).
enrolment_inputs() {
  local dir=$1 size
  shift
  gcc -shared -fPIC -O2 -Wall -o "$dir/insn.so" scripts/qemu/insn.c
  cargo build --release --locked --quiet --example bench
  for size in "$@"; do
    target/release/examples/bench selfie "${size%x*}" "${size#*x}" "$dir/$size.jpg"
  done
  echo "not an image" >"$dir/none.txt"
  export IDENTITY_KEY_FILE=$dir/identity.key SEALING_KEY_FILE=$dir/sealing.key \
    MODELS_DIR=$PWD/target/cross/models RUST_LOG=error TRACT_CPU_ARM32_NEON=true
}

# enrolment_cpu TARGET: aarch64 as on a Pi 4's core (qemu's default CPU has newer
# instructions, which tract uses), unless AARCH64_CPU names another; armv7 on qemu's default.
enrolment_cpu() {
  if [[ $1 == aarch64-* ]]; then export QEMU_CPU=${AARCH64_CPU:-cortex-a72}; else unset QEMU_CPU; fi
}
