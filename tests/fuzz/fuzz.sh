#!/usr/bin/env bash
# diffcr — build and run the libFuzzer harnesses of tests/fuzz (README.md there says what each feeds).
#
#   tests/fuzz/fuzz.sh [SECONDS] [TARGET...]     TARGET: safetensors config decloud_args (default: all)
#
# Builds into $FUZZ_DIR (default /tmp/diffcr-fuzz) with clang's -fsanitize=fuzzer,address,undefined,
# makes the seeds, then runs each target for SECONDS (default 60) one after another, keeping its
# corpus between runs. Exits non-zero when a target found a crash, leak, timeout or UB report; the
# input that did it is under $FUZZ_DIR/artifacts/TARGET/. Needs clang (libclang_rt.fuzzer), cJSON
# and, for decloud_args, GDAL's headers and library.
set -euo pipefail
S=$(cd "$(dirname "$0")/../.." && pwd)
W=${FUZZ_DIR:-/tmp/diffcr-fuzz}
SECONDS_EACH=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(safetensors config decloud_args)
command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed (apt-get install clang)" >&2; exit 2; }

mkdir -p "$W/support" && cd "$W"
INC=(-I"$S/core/include" -I"$S/core" -I"$S/algorithms/include" -I"$S/plugin" -I/usr/include/gdal)
# shellcheck disable=SC2054 # the commas belong to one clang option
CF=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined "${INC[@]}")
# Helpers compiled without instrumentation and garbage-collected at link: they hold a few parsing
# functions next to code that needs the sampler or the raster pipeline (README.md).
helper() { clang -g -O1 -ffunction-sections -fdata-sections "${INC[@]}" -c "$S/$1" -o "support/$(basename "$1" .c).o"; }

build() {
    case $1 in
    safetensors)
        clang "${CF[@]}" -o fuzz_safetensors "$S/tests/fuzz/fuzz_safetensors.c" "$S/core/io/safetensors.c" \
            "$S/core/src/error.c" -lcjson -lm ;;
    config)
        for f in core/src/optim.c core/diffusion/sampler.c core/diffusion/beta_schedule.c \
                 core/diffusion/training_noise.c; do helper "$f"; done
        clang "${CF[@]}" -o fuzz_config "$S/tests/fuzz/fuzz_config.c" "$S/core/io/config.c" "$S/core/io/unet_config.c" \
            "$S/algorithms/train_config.c" "$S/core/src/error.c" support/optim.o support/sampler.o \
            support/beta_schedule.o support/training_noise.o -lcjson -lm -Wl,--gc-sections ;;
    decloud_args)
        helper algorithms/decloud.c
        clang "${CF[@]}" -o fuzz_decloud_args "$S/tests/fuzz/fuzz_decloud_args.c" "$S/plugin/decloud_args.c" \
            "$S/algorithms/tile_cache.c" "$S/core/src/precision.c" "$S/core/src/error.c" support/decloud.o \
            -lgdal -lm -Wl,--gc-sections ;;
    *) echo "fuzz.sh: unknown target '$1' (safetensors, config, decloud_args)" >&2; exit 2 ;;
    esac
}

seeds() {
    mkdir -p "seeds/$1" "corpus/$1" "artifacts/$1"
    case $1 in
    safetensors) /usr/bin/python3 - "seeds/safetensors/a" <<'EOF'
import json, struct, sys
h = json.dumps({"__metadata__": {"k": "v"},
                "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                "b": {"dtype": "F16", "shape": [1], "data_offsets": [17, 19]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + bytes(19))
EOF
        ;;
    config) cp "$S"/configs/*.json seeds/config/ ;;
    decloud_args)
        printf 'band=1\ninputs=/a.tif|/b.tif|/c.tif\ndates=3\nweights=/m.safetensors\nsteps=20\ntile=64\noverlap=16\nwidth=512\nheight=512\nxsrc=0\nysrc=1\nprecision=bf16\n' \
            >seeds/decloud_args/vrt ;;
    esac
}

status=0
for t in "${TARGETS[@]}"; do
    build "$t"
    seeds "$t"
    extra=()
    [ "$t" = safetensors ] && extra=(-max_len=4096)
    echo "fuzz.sh: $t for ${SECONDS_EACH}s" >&2
    if ! "./fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
        "${extra[@]}" -artifact_prefix="artifacts/$t/" "corpus/$t" "seeds/$t" >"$t.log" 2>&1; then
        echo "fuzz.sh: $t FAILED: see $W/$t.log and $W/artifacts/$t/" >&2
        status=1
    else
        echo "fuzz.sh: $t: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$t.log" | grep -o '[0-9]*$') inputs, no finding" >&2
    fi
done
exit $status
