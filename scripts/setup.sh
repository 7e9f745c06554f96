#!/usr/bin/env bash
# Installs the Debian packages dmix needs, if any is missing (run as root on Debian 12).
# The CUDA toolkit is not a Debian package here: the build uses it when /usr/local/cuda exists.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  doctest-dev libstb-dev libopenblas-dev libopenblas-openmp-dev zlib1g-dev nlohmann-json3-dev libcli11-dev
  libeigen3-dev libspectra-dev liblapacke-dev
  clang libfuzzer-14-dev
  libplplot-dev plplot-driver-cairo
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages and not root; run: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
