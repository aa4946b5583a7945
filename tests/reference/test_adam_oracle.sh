#!/bin/bash
# One (and three) optimiser steps of diffcr (dc_adam_update through diffcr-train
# --debug-adam-step) against torch.optim.Adam with DiffCR's lr 5e-5 and torch.optim.AdamW with
# weight decay: parameters and both moments to 1e-5 relative. Skips (77) without /usr/bin/python3
# + torch.
BUILD=${DIFFCR_BUILD_DIR:?}
SRC=${DIFFCR_SOURCE_DIR:?}
TRAIN=$BUILD/algorithms/diffcr-train
PY=/usr/bin/python3
[ -x "$TRAIN" ] || { echo "SKIP: no diffcr-train in $BUILD"; exit 77; }
$PY -c 'import torch, numpy' 2>/dev/null || { echo "SKIP: /usr/bin/python3 has no torch"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ORACLE=$SRC/tests/reference/adam_oracle.py
fail=0
$PY "$ORACLE" make "$T" || exit 1
run() {  # name lr wd kind [extra args]
  $TRAIN --debug-adam-step "$T/adam_in.safetensors" "$T/$1.safetensors" --lr "$2" --weight-decay "$3" "${@:5}" &&
    $PY "$ORACLE" check "$T" "$1" "$2" "$3" "$4" && echo "ok   $1" || { echo "FAIL $1"; fail=1; }
}
run adam 5e-5 0 adam
run adam_l2 1e-3 0.01 adam
run adamw 1e-3 0.05 adamw --adamw
exit $fail
