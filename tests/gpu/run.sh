#!/usr/bin/env bash
# tests/gpu/run.sh — every GPU check and the GPU benchmark in one command (GPU machine, repo root).
#
#   bash tests/gpu/run.sh [--quick] [--no-sanitizer] [--no-bench] [--rebuild-module]
#
# Made for a GPU session with ~10 minutes of device time: one run gives every answer, keeps going
# after a failure, guards each step with `timeout`, saves every log under $OUT (default ./gpu-out)
# and ends with a PASS / FAIL / SKIP table; the exit status is 1 if any step failed.
#
# Programs: the carried bundle (gpu-bundle/, made by scripts/gpu_bundle.sh on the build machine),
# or, where cmake and all build dependencies exist (a normal dev machine with a GPU), a full build
# with -DDIFFCR_CUDA=ON in build-gpu-local/.
# CUDA module (libdiffcr_cuda.so): the carried one if it loads and opens the GPU; otherwise it is
# rebuilt here with the local nvcc from core/cuda/*.cu (+ *.c, + the core/src/*.c files that
# core/cuda/CMakeLists.txt names) against the cuDNN / cuBLAS found on this machine: the CUDA
# toolkit, /usr/include + /usr/lib/x86_64-linux-gnu, or PyTorch's wheels (site-packages/nvidia).
#
# Steps: environment report, module choice, test_gpu_ops, test_gpu_net, bench_gpu (with PyTorch on
# the same GPU), compute-sanitizer memcheck on both tests (--quick cases; last, as the slowest and
# least predictable). Limits: T_OPS, T_NET, T_BENCH, T_SAN, T_BUILD seconds per step and
# GPU_RUN_BUDGET (500) for the whole run. BENCH_ARGS: extra bench_gpu options (e.g. "--reps 5").
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
BUNDLE=${DIFFCR_GPU_BUNDLE:-$ROOT/gpu-bundle}
# Per-step limits, and one budget for the whole run so that it always ends with its summary
# inside a 10-minute device call (steps that would start with < 20 s left are skipped).
T_OPS=${T_OPS:-150} T_NET=${T_NET:-180} T_SAN=${T_SAN:-150} T_BENCH=${T_BENCH:-200} T_BUILD=${T_BUILD:-240}
BUDGET=${GPU_RUN_BUDGET:-500}
START_S=$(date +%s)

QUICK=0 SANITIZER=1 BENCH=1 REBUILD=0
for a in "$@"; do
    case "$a" in
        --quick) QUICK=1 ;;
        --no-sanitizer) SANITIZER=0 ;;
        --no-bench) BENCH=0 ;;
        --rebuild-module) REBUILD=1 ;;
        *) echo "usage: $0 [--quick] [--no-sanitizer] [--no-bench] [--rebuild-module]" >&2; exit 2 ;;
    esac
done

# --- summary bookkeeping ------------------------------------------------------------------------
STEPS=() RESULTS=() SECS=() NOTES=()
record() { STEPS+=("$1"); RESULTS+=("$2"); SECS+=("$3"); NOTES+=("${4:-}"); }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
banner() { printf '\n==== %s\n' "$*"; }

left_s() { echo $((BUDGET - ($(date +%s) - START_S))); }
# min(limit, what is left of the budget)
limit_s() { local l; l=$(left_s); [ "$1" -lt "$l" ] && echo "$1" || echo "$l"; }

# run_step NAME TIMEOUT CMD...: runs with the log in $OUT/NAME.log. Exit 77 or a "SKIP:" line means
# skipped; 124/137 a timeout. Prints the test reporter's FAIL lines and its summary line.
run_step() {
    local name=$1 tmo log="$OUT/$1.log" t0 rc res note=""
    tmo=$(limit_s "$2")
    shift 2
    if [ "$tmo" -lt 20 ]; then
        skip_step "$name" "run budget of ${BUDGET}s spent (GPU_RUN_BUDGET)"
        return
    fi
    banner "$name: $*"
    t0=$(now)
    timeout --kill-after=15 "$tmo" "$@" >"$log" 2>&1
    rc=$?
    case $rc in
        0) res=PASS; grep -q '^\(bench_gpu: \)\?SKIP:' "$log" && res=SKIP ;;
        77) res=SKIP ;;
        124 | 137) res=FAIL; note="timeout after ${tmo}s" ;;
        *) res=FAIL; note="exit $rc" ;;
    esac
    [ "$res" = SKIP ] && note=$(grep -m1 'SKIP:' "$log" | sed 's/.*SKIP: *//' | cut -c1-90)
    grep '^FAIL' "$log" | head -40
    grep -E '^(test_gpu_[a-z]+: [0-9]+ passed|SKIP:|=+ ERROR SUMMARY|bench_gpu: SKIP)' "$log" | tail -3
    if [ "$res" = FAIL ] && ! grep -q '^FAIL' "$log"; then
        echo "---- last lines of $log:"
        tail -15 "$log"
    fi
    echo "-> $res ($(elapsed "$t0") s) $note"
    record "$name" "$res" "$(elapsed "$t0")" "$note"
}

skip_step() { banner "$1"; echo "-> SKIP: $2"; record "$1" SKIP 0 "$2"; }

# --- environment --------------------------------------------------------------------------------
find_python() {
    local p
    for p in "${DIFFCR_PYTHON:-}" python3 /usr/bin/python3 python; do
        [ -n "$p" ] && command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' >/dev/null 2>&1 && { command -v "$p"; return; }
    done
    command -v python3 || echo python3
}

PY=$(find_python)
export DIFFCR_PYTHON=$PY
NVCC=$(command -v nvcc || true)
for d in "${CUDA_HOME:-}" /usr/local/cuda; do
    [ -z "$NVCC" ] && [ -n "$d" ] && [ -x "$d/bin/nvcc" ] && NVCC=$d/bin/nvcc
done
CUDA_HOME=${CUDA_HOME:-$([ -n "$NVCC" ] && dirname "$(dirname "$(readlink -f "$NVCC")")" || echo /usr/local/cuda)}
SITE=$("$PY" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))' 2>/dev/null || true)

env_report() {
    echo "date: $(date -u)"
    echo "host: $(uname -a)"
    echo "glibc: $(ldd --version 2>/dev/null | head -1)"
    echo "== nvidia-smi"
    nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv 2>/dev/null || true
    echo "== nvcc: ${NVCC:-none}"
    [ -n "$NVCC" ] && "$NVCC" --version | tail -2
    echo "== python: $PY"
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.is_available() and torch.cuda.get_device_name(0))' 2>&1 || echo "no PyTorch"
    echo "== bundle: $BUNDLE"
    cat "$BUNDLE/MANIFEST.txt" 2>/dev/null || echo "(no bundle)"
}

banner "environment"
t0=$(now)
env_report 2>&1 | tee "$OUT/env.txt"
record environment PASS "$(elapsed "$t0")"

# --- CUDA libraries: headers and shared objects -------------------------------------------------
INC_DIRS=("$CUDA_HOME/include" /usr/local/cuda/include /usr/include /usr/include/x86_64-linux-gnu)
LIB_DIRS=("$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$CUDA_HOME/targets/x86_64-linux/lib" /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64)
if [ -n "$SITE" ]; then
    for d in "$SITE"/nvidia/*/include; do [ -d "$d" ] && INC_DIRS+=("$d"); done
    for d in "$SITE"/nvidia/*/lib "$SITE/torch/lib"; do [ -d "$d" ] && LIB_DIRS+=("$d"); done
fi

find_header() { local d; for d in "${INC_DIRS[@]}"; do [ -f "$d/$1" ] && { echo "$d"; return; }; done; }
# first file named lib$1.so or lib$1.so.N in the library dirs
find_lib() {
    local d f
    for d in "${LIB_DIRS[@]}"; do
        for f in "$d/lib$1.so" "$d"/lib"$1".so.[0-9]*; do
            [ -e "$f" ] && { echo "$f"; return; }
        done
    done
}

CUDNN_INC=$(find_header cudnn.h) CUBLAS_INC=$(find_header cublas_v2.h) CUDART_INC=$(find_header cuda_runtime.h)
CUDNN_LIB=$(find_lib cudnn) CUBLAS_LIB=$(find_lib cublas) CUBLASLT_LIB=$(find_lib cublasLt) CUDART_LIB=$(find_lib cudart)
{
    echo "cudnn.h: ${CUDNN_INC:-not found}   cublas_v2.h: ${CUBLAS_INC:-not found}   cuda_runtime.h: ${CUDART_INC:-not found}"
    echo "libcudnn: ${CUDNN_LIB:-not found}   libcublas: ${CUBLAS_LIB:-not found}   libcublasLt: ${CUBLASLT_LIB:-not found}   libcudart: ${CUDART_LIB:-not found}"
} | tee -a "$OUT/env.txt"

# every directory holding a CUDA library (cuDNN 9 dlopens its sub-libraries from there)
CUDA_LD=""
for f in "$CUDNN_LIB" "$CUBLAS_LIB" "$CUBLASLT_LIB" "$CUDART_LIB"; do
    [ -n "$f" ] || continue
    d=$(dirname "$f")
    case ":$CUDA_LD:" in *":$d:"*) ;; *) CUDA_LD=${CUDA_LD:+$CUDA_LD:}$d ;; esac
done
if [ -n "$SITE" ]; then
    for d in "$SITE"/nvidia/*/lib; do
        [ -d "$d" ] && case ":$CUDA_LD:" in *":$d:"*) ;; *) CUDA_LD=${CUDA_LD:+$CUDA_LD:}$d ;; esac
    done
fi

# --- programs -----------------------------------------------------------------------------------
OPS="" NET="" BENCHBIN="" BUILT_MODULE=""
banner "programs"
t0=$(now)
if [ -x "$BUNDLE/bin/test_gpu_ops" ]; then
    export LD_LIBRARY_PATH="$BUNDLE/lib${CUDA_LD:+:$CUDA_LD}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    OPS=$BUNDLE/bin/test_gpu_ops NET=$BUNDLE/bin/test_gpu_net BENCHBIN=$BUNDLE/bin/bench_gpu
    echo "using the carried bundle $BUNDLE"
    if ldd "$OPS" | grep -q 'not found'; then
        ldd "$OPS" | grep 'not found'
        record programs FAIL "$(elapsed "$t0")" "bundle libraries missing"
        OPS="" NET="" BENCHBIN=""
    else
        "$OPS" --probe >"$OUT/probe-bundle.log" 2>&1
        rc=$?
        if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
            cat "$OUT/probe-bundle.log"
            record programs FAIL "$(elapsed "$t0")" "bundle programs do not run here (glibc older than the MANIFEST's?)"
            OPS="" NET="" BENCHBIN=""
        else
            record programs PASS "$(elapsed "$t0")" "bundle"
        fi
    fi
elif command -v cmake >/dev/null 2>&1; then
    echo "no bundle: full build in build-gpu-local/ (needs OpenBLAS, cJSON, Check, the CUDA toolkit and cuDNN)"
    export LD_LIBRARY_PATH="${CUDA_LD}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if timeout "$T_BUILD" cmake -S . -B build-gpu-local -DCMAKE_BUILD_TYPE=Release -DDIFFCR_CUDA=ON -DDIFFCR_DNNL=OFF \
        -DDIFFCR_GDAL=OFF >"$OUT/build.log" 2>&1 &&
        timeout "$T_BUILD" cmake --build build-gpu-local -j "$(nproc)" --target test_gpu_ops test_gpu_net bench_gpu diffcr_cuda \
            >>"$OUT/build.log" 2>&1; then
        OPS=build-gpu-local/tests/gpu/test_gpu_ops NET=build-gpu-local/tests/gpu/test_gpu_net
        BENCHBIN=build-gpu-local/bench/bench_gpu BUILT_MODULE=build-gpu-local/core/cuda/libdiffcr_cuda.so
        record programs PASS "$(elapsed "$t0")" "local build"
    else
        tail -20 "$OUT/build.log"
        record programs FAIL "$(elapsed "$t0")" "local build failed (see build.log)"
    fi
else
    echo "no bundle ($BUNDLE) and no cmake: nothing to run"
    record programs FAIL "$(elapsed "$t0")" "no programs"
fi

# --- the CUDA module ----------------------------------------------------------------------------
have_gpu() { [ -e /dev/nvidia0 ] || nvidia-smi -L >/dev/null 2>&1; }

# probe MODULE: can the programs open cuda with it? Output in $OUT/probe.log (appended).
probe() {
    echo "-- probe $1" >>"$OUT/probe.log"
    [ -n "$1" ] && [ -f "$1" ] || { echo "(missing)" >>"$OUT/probe.log"; return 1; }
    ldd "$1" 2>&1 | grep 'not found' >>"$OUT/probe.log"
    DIFFCR_CUDA_MODULE=$1 "$OPS" --probe >>"$OUT/probe.log" 2>&1
}

# Compile libdiffcr_cuda.so with the local nvcc into $1 (a folder). Run through `bash -c` under
# timeout, hence the shellcheck note.
# shellcheck disable=SC2317
build_module() {
    local dir=$1 cc=90 srcs_cu srcs_c extra f obj pids=() ok=1 nvflags
    [ -n "$NVCC" ] || { echo "no nvcc"; return 1; }
    [ -n "$CUDNN_INC" ] && [ -n "$CUDNN_LIB" ] && [ -n "$CUBLAS_LIB" ] || { echo "cuDNN or cuBLAS not found"; return 1; }
    cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader -i 0 2>/dev/null | head -1 | tr -d ' .')
    [ -n "$cc" ] || cc=90
    rm -rf "$dir" && mkdir -p "$dir/obj" "$dir/link"
    # the wheels ship libcudnn.so.9 without the unversioned name the linker wants
    ln -sf "$CUDNN_LIB" "$dir/link/libcudnn.so"
    ln -sf "$CUBLAS_LIB" "$dir/link/libcublas.so"
    [ -n "$CUBLASLT_LIB" ] && ln -sf "$CUBLASLT_LIB" "$dir/link/libcublasLt.so"
    srcs_cu=(core/cuda/*.cu)
    srcs_c=()
    for f in core/cuda/*.c; do [ -f "$f" ] && srcs_c+=("$f"); done
    # core/src files the module's CMake names (error.c, precision.c, ...); error.c at least
    extra=$(grep -o 'core/src/[A-Za-z0-9_]*\.c' core/cuda/CMakeLists.txt 2>/dev/null | sort -u)
    [ -n "$extra" ] || extra=core/src/error.c
    for f in $extra; do [ -f "$f" ] && srcs_c+=("$f"); done
    local incs=(-I core/include -I core -I core/cuda -I "$CUDNN_INC")
    for d in "$CUBLAS_INC" "$CUDART_INC"; do [ -n "$d" ] && incs+=(-I "$d"); done
    nvflags=(-Xcompiler -fPIC -O3 --fmad=false -std=c++17 "-arch=sm_$cc")
    echo "nvcc $("$NVCC" --version | tail -1), sm_$cc: ${srcs_cu[*]} ${srcs_c[*]}"
    for f in "${srcs_cu[@]}"; do
        obj=$dir/obj/$(basename "$f").o
        "$NVCC" "${nvflags[@]}" "${incs[@]}" -c "$f" -o "$obj" >"$obj.log" 2>&1 &
        pids+=($!)
    done
    for f in "${srcs_c[@]}"; do
        obj=$dir/obj/$(basename "$f").o
        gcc -std=c11 -O2 -fPIC -D_GNU_SOURCE -ffp-contract=off "${incs[@]}" -c "$f" -o "$obj" >"$obj.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || ok=0; done
    cat "$dir"/obj/*.log
    if [ $ok = 0 ] && grep -q 'unsupported GNU version' "$dir"/obj/*.log; then
        echo "retrying with -allow-unsupported-compiler"
        nvflags+=(-allow-unsupported-compiler)
        ok=1
        for f in "${srcs_cu[@]}"; do
            "$NVCC" "${nvflags[@]}" "${incs[@]}" -c "$f" -o "$dir/obj/$(basename "$f").o" || ok=0
        done
    fi
    [ $ok = 1 ] || return 1
    local libs=(-lcudnn -lcublas)
    [ -n "$CUBLASLT_LIB" ] && libs+=(-lcublasLt)
    "$NVCC" -shared "${nvflags[@]}" "$dir"/obj/*.o -o "$dir/libdiffcr_cuda.so" -L "$dir/link" "${libs[@]}" -ldl -lpthread -lrt
}

MODULE=""
banner "CUDA module"
t0=$(now)
: >"$OUT/probe.log"
if [ -z "$OPS" ]; then
    record module SKIP 0 "no programs"
else
    for cand in $([ $REBUILD = 0 ] && echo "${DIFFCR_CUDA_MODULE:-} $BUNDLE/lib/libdiffcr_cuda.so $BUILT_MODULE"); do
        if probe "$cand"; then MODULE=$cand; break; fi
    done
    tail -n +1 "$OUT/probe.log"
    note=""
    if [ -z "$MODULE" ]; then
        if [ $REBUILD = 1 ] || have_gpu; then
            echo "no carried module opens the GPU: building one with the local nvcc"
            MODDIR=${TMPDIR:-/tmp}/diffcr-gpu-module
            if timeout "$(limit_s "$T_BUILD")" bash -c "$(declare -f build_module); $(declare -p NVCC CUDNN_INC CUDNN_LIB CUBLAS_INC CUBLAS_LIB CUBLASLT_LIB CUDART_INC); build_module '$MODDIR'" \
                >"$OUT/module-build.log" 2>&1; then
                probe "$MODDIR/libdiffcr_cuda.so" && MODULE=$MODDIR/libdiffcr_cuda.so
                tail -3 "$OUT/probe.log"
                note="rebuilt with local nvcc"
            else
                tail -30 "$OUT/module-build.log"
                note="local nvcc build failed (module-build.log)"
            fi
        else
            note="no GPU device here: not rebuilding"
        fi
    fi
    if [ -n "$MODULE" ]; then
        echo "module: $MODULE"
        record module PASS "$(elapsed "$t0")" "${note:-$MODULE}"
    elif have_gpu; then
        record module FAIL "$(elapsed "$t0")" "${note:-no usable module}"
    else
        record module SKIP "$(elapsed "$t0")" "${note:-no GPU}"
    fi
fi
# without a usable module the tests report SKIP with the loader's own reason (default search)
if [ -n "$MODULE" ]; then export DIFFCR_CUDA_MODULE=$MODULE; else unset DIFFCR_CUDA_MODULE; fi
export DIFFCR_SOURCE_DIR=$ROOT

# --- tests, sanitizer, benchmark ----------------------------------------------------------------
QARG=()
[ $QUICK = 1 ] && QARG=(--quick)
if [ -n "$OPS" ]; then
    run_step test_gpu_ops "$T_OPS" "$OPS" ${QARG[@]+"${QARG[@]}"}
    run_step test_gpu_net "$T_NET" "$NET" ${QARG[@]+"${QARG[@]}"}
    # the depthwise 3x3 through cuDNN's grouped convolution instead of the direct kernels
    DIFFCR_CUDA_DWCONV=cudnn run_step test_gpu_ops_cudnn_dw "$T_OPS" "$OPS" --quick
else
    skip_step test_gpu_ops "no programs"
    skip_step test_gpu_net "no programs"
    skip_step test_gpu_ops_cudnn_dw "no programs"
fi

if [ $BENCH = 0 ] || [ $QUICK = 1 ]; then
    skip_step bench_gpu "--no-bench or --quick"
elif [ -z "$BENCHBIN" ]; then
    skip_step bench_gpu "no programs"
else
    # shellcheck disable=SC2086 # BENCH_ARGS: extra options, word-split on purpose
    # DIFFCR_CUDA_LOG: cuDNN's algorithm choice per shape, precision and direction, kept in the log
    DIFFCR_CUDA_LOG=1 run_step bench_gpu "$T_BENCH" "$BENCHBIN" --python "$PY" ${BENCH_ARGS:-}
    # diffcr's own figures per precision come first (kept even when a timeout cut the run short)
    grep -E '^\[(fp32|tf32|fp16|bf16)\] forward' "$OUT/bench_gpu.log"
    sed -n '/^GPU:/,/^BENCH_JSON/p' "$OUT/bench_gpu.log" | grep -v -e '^BENCH_JSON' -e '^diffcr cuda:'
    grep -m1 'PyTorch figures unavailable' "$OUT/bench_gpu.log" && NOTES[${#NOTES[@]} - 1]="no PyTorch figures"
fi


SAN=$(command -v compute-sanitizer || true)
for c in "$CUDA_HOME/bin/compute-sanitizer" /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
    "$SITE"/nvidia/cuda_sanitizer_api/compute-sanitizer/compute-sanitizer; do
    [ -z "$SAN" ] && [ -x "$c" ] && SAN=$c
done
for t in ops net; do
    name=sanitizer_$t
    bin=$([ $t = ops ] && echo "$OPS" || echo "$NET")
    if [ $SANITIZER = 0 ]; then
        skip_step "$name" "--no-sanitizer"
    elif [ -z "$SAN" ]; then
        skip_step "$name" "compute-sanitizer not found"
    elif [ -z "$MODULE" ] || [ -z "$bin" ]; then
        skip_step "$name" "no usable CUDA device/module"
    else
        run_step "$name" "$T_SAN" "$SAN" --tool memcheck --error-exitcode 99 "$bin" --quick
    fi
done

# --- summary ------------------------------------------------------------------------------------
banner "summary (logs in $OUT)"
failed=0
{
    printf '%-16s %-6s %8s  %s\n' step result seconds note
    for i in "${!STEPS[@]}"; do
        printf '%-16s %-6s %8s  %s\n' "${STEPS[$i]}" "${RESULTS[$i]}" "${SECS[$i]}" "${NOTES[$i]}"
    done
} | tee "$OUT/summary.txt"
for r in "${RESULTS[@]}"; do [ "$r" = FAIL ] && failed=1; done
exit $failed
