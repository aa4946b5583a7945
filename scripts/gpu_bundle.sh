#!/usr/bin/env bash
# scripts/gpu_bundle.sh — build the GPU test programs HERE and pack them for a GPU machine.
#
#   scripts/gpu_bundle.sh            # -> build-gpu/ (build tree), gpu-bundle/{bin,lib} (what to carry)
#
# The GPU machine has no GDAL, cJSON, Check, oneDNN, OpenBLAS or package registry, so the programs
# are built here (no oneDNN, no GDAL, CUDA module for sm_90) and copied, stripped, into gpu-bundle/
# together with every non-system shared library they load (ldd): OpenBLAS, gfortran, quadmath,
# cJSON, gomp. Not copied: glibc, libm, libstdc++, libgcc_s, the dynamic loader (the GPU machine's
# own must do; the highest GLIBC_ version needed is printed) and the CUDA libraries (cudart,
# cuBLAS, cuDNN come from the GPU machine: its toolkit or PyTorch's wheels; tests/gpu/run.sh finds
# them and rebuilds libdiffcr_cuda.so there with its nvcc if the carried one does not load).
#
# Carry gpu-bundle/ (it must stay well under the 64 MiB limit; the size is printed and checked).
# Then on the GPU machine, from the repository root: bash tests/gpu/run.sh
#
# Environment:
#   DIFFCR_GPU_BUILD   build folder (default build-gpu)
#   DIFFCR_GPU_BUNDLE  bundle folder (default gpu-bundle)
#   DIFFCR_GPU_CUDA    ON (default) | OFF: bundle without the module (run.sh then compiles it)
#   DIFFCR_GPU_ARCH    CMAKE_CUDA_ARCHITECTURES (default 90: H100/H200)
# Size: ~40 MiB, of which libopenblas.so.0 is 35 (Debian's DYNAMIC_ARCH build). Linking
# libopenblas.a instead was tried: 24 MiB per program, worse.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${DIFFCR_GPU_BUILD:-$ROOT/build-gpu}
BUNDLE=${DIFFCR_GPU_BUNDLE:-$ROOT/gpu-bundle}
CUDA=${DIFFCR_GPU_CUDA:-ON}
ARCH=${DIFFCR_GPU_ARCH:-90}
LIMIT_MIB=60   # the carry limit is 64 MiB: keep a margin
PROGRAMS=(test_gpu_ops test_gpu_net bench_gpu diffcr-net)

say() { printf '\n== %s\n' "$*"; }
die() { printf 'gpu_bundle: %s\n' "$*" >&2; exit 1; }

configure() {
    say "configure $BUILD (CUDA $CUDA, sm_$ARCH)"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON \
        -DDIFFCR_DNNL=OFF -DDIFFCR_GDAL=OFF -DDIFFCR_CUDA="$CUDA" -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
        >"$BUILD.configure.log" 2>&1 || { tail -30 "$BUILD.configure.log"; die "configure failed"; }
    grep -E "diffcr: (CUDA|oneDNN|GDAL)" "$BUILD.configure.log" || true
}

build() {
    local targets=("${PROGRAMS[@]}") have
    have=$(cmake --build "$BUILD" --target help | sed -n 's/^\.\.\. \([^ ]*\).*/\1/p')
    for t in "${PROGRAMS[@]}"; do
        grep -qx "$t" <<<"$have" || die "no target $t: is tests/gpu wired (add_subdirectory(gpu) in tests/CMakeLists.txt)?"
    done
    if [ "$CUDA" != OFF ]; then
        grep -qx diffcr_cuda <<<"$have" || die "no target diffcr_cuda: the CUDA module is not configured (see $BUILD.configure.log)"
        targets+=(diffcr_cuda)
    fi
    say "build ${targets[*]}"
    cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]}" >"$BUILD.build.log" 2>&1 || {
        grep -E "error|Error" "$BUILD.build.log" | head -30
        die "build failed (log: $BUILD.build.log)"
    }
}

# ldd's resolved paths of the libraries a file needs that the GPU machine may lack.
needed_libs() {
    ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
        case "$name" in
            linux-vdso* | ld-linux* | libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | \
                libutil.so* | libresolv.so* | libstdc++.so* | libgcc_s.so*) ;;   # the system's own
            libcuda.so* | libcudart* | libcublas* | libcudnn* | libnvrtc* | libnvJitLink* | libcufft* | \
                libcurand* | libcusparse* | libcusolver* | libnvToolsExt*) ;;      # the GPU machine's
            *) echo "$name $path" ;;
        esac
    done
    ldd "$1" | awk '/not found/ {print "MISSING", $1}'
}

pack() {
    say "pack $BUNDLE"
    rm -rf "$BUNDLE"
    mkdir -p "$BUNDLE/bin" "$BUNDLE/lib"
    local f
    for t in "${PROGRAMS[@]}"; do
        f=$(find "$BUILD" -type f -name "$t" -perm -u+x | head -1)
        [ -n "$f" ] || die "built program $t not found under $BUILD"
        cp "$f" "$BUNDLE/bin/$t"
        strip --strip-unneeded "$BUNDLE/bin/$t"
    done
    if [ "$CUDA" != OFF ]; then
        f=$(find "$BUILD" -type f -name libdiffcr_cuda.so | head -1)
        [ -n "$f" ] || die "libdiffcr_cuda.so not found under $BUILD"
        cp "$f" "$BUNDLE/lib/"
        # debug info only: the module's device code (.nv_fatbin) must stay
        strip --strip-debug "$BUNDLE/lib/libdiffcr_cuda.so"
    fi
    local missing=0
    for f in "$BUNDLE"/bin/* "$BUNDLE"/lib/*.so; do
        while read -r name path; do
            if [ "$name" = MISSING ]; then
                # the module's CUDA libraries may be absent here; anything else is an error
                case "$path" in libcu* | libnv*) ;; *) echo "  $f needs $path: not found here"; missing=1 ;; esac
                continue
            fi
            [ -e "$BUNDLE/lib/$name" ] || { cp -L "$path" "$BUNDLE/lib/$name"; echo "  lib/$name  <- $path"; }
        done < <(needed_libs "$f")
    done
    [ "$missing" = 0 ] || die "unresolved libraries"
}

# The highest symbol version of a family (GLIBC_, GLIBCXX_, GCC_) the bundle needs.
max_version() {
    objdump -T "$BUNDLE"/bin/* "$BUNDLE"/lib/*.so* 2>/dev/null | grep -o "$1[0-9][0-9.]*" | sort -uV | tail -1
}

report() {
    local total_kb total_mib glibc
    say "bundle contents"
    (cd "$BUNDLE" && du -ak bin lib | sort -k2 | awk '{printf "  %8.2f MiB  %s\n", $1 / 1024, $2}')
    total_kb=$(du -sk "$BUNDLE" | cut -f1)
    total_mib=$(awk -v k="$total_kb" 'BEGIN {printf "%.1f", k / 1024}')
    glibc=$(max_version GLIBC_)
    {
        echo "built $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -n), $(ldd --version | head -1)"
        echo "cuda module: $CUDA (sm_$ARCH), $(nvcc --version 2>/dev/null | tail -1)"
        echo "needs at least: ${glibc:-?} $(max_version GLIBCXX_) $(max_version GCC_)"
        echo "module needs: $(ldd "$BUNDLE/lib/libdiffcr_cuda.so" 2>/dev/null | awk '/libcu|libnv/ {print $1}' | tr '\n' ' ')"
    } >"$BUNDLE/MANIFEST.txt"
    cat "$BUNDLE/MANIFEST.txt"
    echo "total: $total_mib MiB (carry limit 64 MiB; this script's limit $LIMIT_MIB MiB)"
    if [ "$total_kb" -gt $((LIMIT_MIB * 1024)) ]; then
        die "bundle too large"
    fi
}

configure
build
pack
report
say "done: carry $(basename "$BUNDLE")/ and run 'bash tests/gpu/run.sh' from the repository root"
