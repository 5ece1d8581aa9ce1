#!/bin/bash
# Offline build of the mediasoup 3.27.1 worker on Debian 12 (no GitHub / wrapdb access).
# Source trees for libsrtp (cisco/libsrtp @ 11bec2b) and unordered_dense (v4.8.1) are taken
# from local git mirrors (obtained via the session's `fetch` tool); set LIBSRTP_GIT / UD_GIT.
set -euo pipefail
TOP=${TOP:-/work/mediasoup-try}
LIBSRTP_GIT=${LIBSRTP_GIT:-/work/.mirror/cisco+libsrtp/repo}
LIBSRTP_REV=${LIBSRTP_REV:-11bec2b}     # "replace legacy policy structs with new opaque srtp_policy_t" (2026-04-18)
UD_GIT=${UD_GIT:-/work/.mirror/martinus+unordered_dense/repo}

apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y g++ pkg-config ninja-build python3-venv \
  libssl-dev libuv1-dev libabsl-dev flatbuffers-compiler libflatbuffers-dev
python3 -m venv $TOP/venv && $TOP/venv/bin/pip install -q meson   # Debian's meson 1.0.1 is < 1.1.0 required

mkdir -p $TOP/app && cd $TOP/app
[ -f package.json ] || npm init -y >/dev/null
npm install --ignore-scripts mediasoup@3.27.1     # skips prebuilt download + meson wraps
W=$TOP/app/node_modules/mediasoup/worker
cd $W/subprojects

# libuv -> Debian libuv1-dev 1.44.2 (stub subproject exporting libuv_dep + dummy static lib for link_whole)
mkdir -p libuv-v1.51.0; echo 'void ms_uv_stub(void){}' > libuv-v1.51.0/stub.c
cat > libuv-v1.51.0/meson.build <<'M'
project('libuv', 'c')
libuv_dep = dependency('libuv')
libuv = static_library('uv_stub', 'stub.c')
M
printf "option('build_tests', type: 'boolean', value: false)\noption('build_benchmarks', type: 'boolean', value: false)\n" > libuv-v1.51.0/meson_options.txt

# openssl -> Debian libssl-dev 3.0.x
mkdir -p openssl-3.0.8; echo 'void ms_ssl_stub(void){}' > openssl-3.0.8/stub.c; echo 'void ms_crypto_stub(void){}' > openssl-3.0.8/stub2.c
cat > openssl-3.0.8/meson.build <<'M'
project('openssl', 'c')
openssl_dep = dependency('openssl')
libcrypto_lib = static_library('crypto_stub', 'stub2.c')
libssl_lib = static_library('ssl_stub', 'stub.c')
M

# abseil -> Debian libabsl-dev 20220623 (only absl/strings/match.h + absl/types/optional.h are used by deps/libwebrtc)
mkdir -p abseil-cpp-20240722.0; echo 'void ms_absl_stub(void){}' > abseil-cpp-20240722.0/stub.c
cat > abseil-cpp-20240722.0/meson.build <<'M'
project('abseil-cpp', 'c', 'cpp')
absl_container_dep = declare_dependency(dependencies: [dependency('absl_strings'), dependency('absl_optional'), dependency('absl_base')])
absl_container_lib = static_library('absl_stub', 'stub.c')
absl_strings_dep = dependency('absl_strings')
absl_types_dep = dependency('absl_optional')
M

# flatbuffers -> Debian flatc + headers 2.0.8 (generated code and headers must be the same version)
mkdir -p flatbuffers-24.3.25; echo 'void ms_fb_stub(void){}' > flatbuffers-24.3.25/stub.c
cat > flatbuffers-24.3.25/meson.build <<'M'
project('flatbuffers', 'c', 'cpp', version: '2.0.8-debian')
flatc = find_program('/usr/bin/flatc')
meson.override_find_program('flatc', flatc)
flatbuffers_dep = declare_dependency()
flatbuffers_lib = static_library('flatbuffers_stub', 'stub.c')
M

# libsrtp3: real sources (must have the opaque srtp_policy_t API: srtp_policy_create/..._add_key/...)
rm -rf libsrtp-3.0.0-beta-2fc078db
git -C $LIBSRTP_GIT archive --prefix=libsrtp-3.0.0-beta-2fc078db/ $LIBSRTP_REV | tar x
find libsrtp-3.0.0-beta-2fc078db -type f -exec touch {} +   # git archive keeps old mtimes -> ninja would not rebuild

# unordered_dense 4.8.1 (header only) + mediasoup's own packagefile meson.build
rm -rf unordered_dense-4.8.1
git -C $UD_GIT archive --prefix=unordered_dense-4.8.1/ v4.8.1 | tar x
cp packagefiles/ankerl-unordered-dense/meson.build unordered_dense-4.8.1/meson.build

cd $W
$TOP/venv/bin/meson setup out/Release/build --buildtype release -Db_ndebug=true --wrap-mode=nodownload
time ninja -C out/Release/build -j"$(nproc)" mediasoup-worker
mkdir -p $TOP/bin && cp out/Release/build/mediasoup-worker $TOP/bin/
echo "run with: MEDIASOUP_WORKER_BIN=$TOP/bin/mediasoup-worker node $TOP/app/test-worker.mjs"
