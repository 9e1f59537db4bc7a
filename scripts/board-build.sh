# Sourced by scripts/cross and scripts/profile-arm: how a board build of TARGET is made.

# board_build TARGET SYSROOT PROFILE: sets the array `board` to cargo's arguments for
# TARGET's board build (no backend, no ONNX, the camera) with Debian's ARM standard
# library in SYSROOT, and exports the sysroot the camera's V4L2 bindings are generated
# against. The sysroot joins .cargo/config.toml's flags for the target (armv7's CPU)
# instead of replacing them, as RUSTFLAGS would.
board_build() {
  local target=$1 sysroot=$2 profile=$3 triple
  case $target in
    aarch64-*) triple=aarch64-linux-gnu ;;
    *) triple=arm-linux-gnueabihf ;;
  esac
  export "BINDGEN_EXTRA_CLANG_ARGS_${target//-/_}=--sysroot=/usr/$triple"
  board=(--profile "$profile" --locked --no-default-features --features camera
         --target "$target" --config "target.$target.rustflags=['--sysroot', '$sysroot']")
}
