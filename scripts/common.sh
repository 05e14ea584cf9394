# Shared set-up for weft's scripts: install missing Debian 12 packages.
# Sourced, not run.
set -euo pipefail

WEFT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEFT_PACKAGES=(g++ cmake ninja-build libboost1.81-dev libboost-fiber1.81-dev libboost-context1.81-dev doctest-dev
               python3 curl openssl libssl-dev  # the real clients and peers of the network tests
               universal-ctags)  # reads the public headers for the samples' entry-point check

weft_install_packages() {
  local missing=()
  for p in "${WEFT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "weft: installing ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
}

weft_jobs() {
  nproc 2>/dev/null || echo 2
}

# weft_configure <build-dir> [cmake args...]
weft_configure() {
  local dir="$1"
  shift
  cmake -S "$WEFT_ROOT" -B "$dir" -G Ninja "$@"
}
