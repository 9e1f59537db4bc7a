# Sourced by the scripts that measure on labelled photos, which run from the repository
# root: where the figures are taken, and the photo folders given as absolute paths.

# The line that says on what machine and at what commit the figures were taken.
measured_on() {
  echo "Measured on $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, at commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with changes)')."
  echo
}

# Sets `args` to the arguments with the folder after each --portraits and --occlusion
# made absolute (call it before leaving the caller's directory).
photo_folders() {
  args=()
  while [[ $# -gt 0 ]]; do
    case $1 in
      --portraits|--occlusion) [[ $# -ge 2 && -d $2 ]] || { echo "$1 needs a directory" >&2; exit 2; }
        args+=("$1" "$(cd "$2" && pwd)"); shift 2 ;;
      *) args+=("$1"); shift ;;
    esac
  done
}
