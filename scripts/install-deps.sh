#!/usr/bin/env bash
# Installs the Debian packages Ember needs to build, test and benchmark, when they are missing.
# Idempotent and quiet when everything is present. Needs root (or sudo) only to install.
set -euo pipefail
need=(cmake make gcc pkg-config clang-format liblz4-dev libzstd-dev libxxhash-dev libsodium-dev libuv1-dev python3)
# network namespaces, links and packet drops of the multi-host test and `make chaos`
need+=(iproute2 nftables)
if [ "${EMBER_BENCH_DEPS:-0}" = 1 ]; then need+=(python3-distributed python3-dask python3-numpy python3-psutil time); fi
# make fuzz: clang with libFuzzer's runtime (libclang-rt-14-dev holds libclang_rt.fuzzer)
if [ "${EMBER_FUZZ_DEPS:-0}" = 1 ]; then need+=(clang libclang-rt-14-dev); fi
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
