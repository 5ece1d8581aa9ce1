#!/usr/bin/env bash
# Builds mediasoup's C++ worker (npm mediasoup 3.27.1) offline on Debian 12, for the
# benchmark's mediasoup peer (bench/mediasoup/server.mjs). Needs only Debian's packages
# and the npm registry: `npm install mediasoup` would download a prebuilt worker from
# GitHub, or build one with meson wraps that download openssl, libuv, libsrtp3,
# flatbuffers and abseil; here every wrap is replaced by a subproject directory:
#   - libuv, openssl, abseil, flatbuffers: stubs over Debian's -dev packages (pkg-config),
#   - libsrtp3 and unordered_dense: the sources kept in bench/mediasoup/vendor/ (no
#     registry has them: Debian 12 has only libsrtp2, and mediasoup 3.27 needs libsrtp3's
#     opaque srtp_policy_t API; see vendor/README.md).
# Debian's meson is 1.0.1 and mediasoup asks for >= 1.1.0; its build uses nothing newer,
# so the requirement is lowered in the unpacked package (no meson from PyPI needed).
#
#   sudo bash bench/mediasoup/build.sh     # about 10 minutes on 2 cores; idempotent
#
# Leaves the worker at bench/mediasoup/.build/mediasoup-worker (the path server.mjs is
# run with as MEDIASOUP_WORKER_BIN); skips everything when it is there already.
# Deviations from mediasoup's own build (matter for the benchmark): the one-line DTLS fix
# below (without it the worker crashes at the first DTLS handshake), system libraries
# linked dynamically in Debian's versions (OpenSSL 3.0, libuv 1.44, abseil 20220623,
# flatbuffers 2.0.8 instead of 24.3.25), and libsrtp from cisco/libsrtp's PR #790 head
# (11bec2b) instead of mediasoup's fork commit 2fc078db (same API). See FINDINGS.md.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/.build"
if [ -x "$OUT/mediasoup-worker" ] && [ "${1:-}" != "--force" ]; then
  echo "mediasoup worker already built: $OUT/mediasoup-worker"
  exit 0
fi

PACKAGES="g++ pkg-config ninja-build meson libssl-dev libuv1-dev libabsl-dev flatbuffers-compiler libflatbuffers-dev"
# Node and npm: Debian's (nodejs, npm) unless a node with npm is installed already.
command -v npm >/dev/null || PACKAGES="$PACKAGES nodejs npm"
# shellcheck disable=SC2086 # a list of package names
if ! dpkg -s $PACKAGES >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y $PACKAGES
fi

cd "$HERE"
# package-lock.json pins mediasoup 3.27.1 and its dependencies; --ignore-scripts skips
# the worker download/build (we build it below).
npm ci --ignore-scripts --no-audit --no-fund
W="$HERE/node_modules/mediasoup/worker"
sed -i "s/meson_version: '>= 1.1.0'/meson_version: '>= 1.0.0'/" "$W/meson.build"
# A fix the worker needs with Debian's OpenSSL, which is built with kernel TLS: the BIO
# callback on the DTLS output answers 1 to the return phase of every operation but
# writes, so OpenSSL's BIO_get_ktls_send() on that BIO says yes, OpenSSL allocates no
# write buffer, and the worker crashes (SIGSEGV in SSL_read) at the first DTLS handshake.
# mediasoup's own OpenSSL is built without kernel TLS and never asks. Answer `ret` for
# every return phase.
sed -i 's/const long resultOfcallback = (operationType == BIO_CB_RETURN)/const long resultOfcallback = (operationType \& BIO_CB_RETURN)/' \
  "$W/src/RTC/DtlsTransport.cpp"
grep -q '(operationType & BIO_CB_RETURN)' "$W/src/RTC/DtlsTransport.cpp"
S="$W/subprojects"

# A stub subproject: exports the variables mediasoup's meson.build reads, from Debian's
# pkg-config packages, and empty static libraries for its link_whole lists.
stub() {  # stub DIR MESON_BUILD
  mkdir -p "$S/$1"
  echo "void ms_stub_$RANDOM(void){}" > "$S/$1/stub.c"
  printf '%s\n' "$2" > "$S/$1/meson.build"
}
stub libuv-v1.51.0 "project('libuv', 'c')
libuv_dep = dependency('libuv')
libuv = static_library('uv_stub', 'stub.c')"
printf "option('build_tests', type: 'boolean', value: false)\noption('build_benchmarks', type: 'boolean', value: false)\n" \
  > "$S/libuv-v1.51.0/meson_options.txt"
stub openssl-3.0.8 "project('openssl', 'c')
openssl_dep = dependency('openssl')
libcrypto_lib = static_library('crypto_stub', 'stub.c')
libssl_lib = static_library('ssl_stub', 'stub.c')"
# deps/libwebrtc uses only absl/strings/match.h and absl/types/optional.h.
stub abseil-cpp-20240722.0 "project('abseil-cpp', 'c', 'cpp')
absl_container_dep = declare_dependency(dependencies: [dependency('absl_strings'), dependency('absl_optional'), dependency('absl_base')])
absl_container_lib = static_library('absl_stub', 'stub.c')
absl_strings_dep = dependency('absl_strings')
absl_types_dep = dependency('absl_optional')"
# Debian's flatc and headers are both 2.0.8, so the generated code fits the headers.
stub flatbuffers-24.3.25 "project('flatbuffers', 'c', 'cpp', version: '2.0.8-debian')
flatc = find_program('/usr/bin/flatc')
meson.override_find_program('flatc', flatc)
flatbuffers_dep = declare_dependency()
flatbuffers_lib = static_library('flatbuffers_stub', 'stub.c')"

# libsrtp3 and unordered_dense from vendor/, under the directory names of their wraps.
rm -rf "$S/libsrtp-3.0.0-beta-2fc078db" "$S/unordered_dense-4.8.1"
tar xzf "$HERE/vendor/libsrtp-11bec2b.tar.gz" -C "$S"
mv "$S/libsrtp-11bec2b" "$S/libsrtp-3.0.0-beta-2fc078db"
tar xzf "$HERE/vendor/unordered_dense-4.8.1.tar.gz" -C "$S"
cp "$S/packagefiles/ankerl-unordered-dense/meson.build" "$S/unordered_dense-4.8.1/meson.build"
# The archives keep their sources' old mtimes: newer ones make ninja rebuild them.
find "$S/libsrtp-3.0.0-beta-2fc078db" "$S/unordered_dense-4.8.1" -type f -exec touch {} +

cd "$W"
rm -rf out/Release/build
meson setup out/Release/build --buildtype release -Db_ndebug=true --wrap-mode=nodownload
ninja -C out/Release/build -j"$(nproc)" mediasoup-worker
mkdir -p "$OUT"
cp out/Release/build/mediasoup-worker "$OUT/"
echo "built $OUT/mediasoup-worker"
