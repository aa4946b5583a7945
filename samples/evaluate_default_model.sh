#!/usr/bin/env bash
# diffcr — the default model's quality on data it never saw, against two baselines computed by the
# project's own metrics (diffcr-evaluate): the per-pixel median of the dates and the least-cloudy date.
#
#   samples/evaluate_default_model.sh [MODEL]      (default samples/model/diffcr_default.safetensors)
#
# Sets (read in place from ../shared/data; nothing is copied into the repository):
#   berlin-heldout  the eastern third of the Sentinel-2 Berlin scene (never trained on), clouds
#                   simulated with 3 seeds; truth = the clear scene
#   cbers-real      real CBERS-4 AWFI clouds: 2017-10-16, 11-17, 12-03 -> truth 2017-11-01 (clear), and
#                   2018-02-02, 02-18, 03-06 -> truth 2018-03-22 (evaluation-only set)
#   sen12mscr-real  the 2 SEN12MS-CR cloudy/clear pairs (one cloudy date each, given three times, as
#                   DIFFCR.md §11.5 suggests for a missing date; evaluation-only set)
# Prints a Markdown table (mean over the cases of each set) and writes it to build/default-model/eval/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DIFFCR_BUILD_DIR:-$ROOT/build}"
MODEL="${1:-$ROOT/samples/model/diffcr_default.safetensors}"
DATA="$ROOT/../shared/data"
W="$ROOT/build/default-model/eval"
DEC="$BUILD/algorithms/diffcr-decloud"
EV="$BUILD/algorithms/diffcr-evaluate"
SIM="$BUILD/algorithms/diffcr-simulate"
mkdir -p "$W"
: >"$W/results.jsonl"

# run_case SET NAME TRUTH BANDS DATE1 DATE2 DATE3: model + baselines vs truth, one JSON line per method
run_case() {
  local set=$1 name=$2 truth=$3 bands=$4; shift 4
  local d=("$@")
  "$DEC" "${d[@]}" -b "$bands" "$W/$name.model.tif" --weights "$MODEL" --seed 1 -q
  "$EV" --baseline median "${d[@]}" -b "$bands" -o "$W/$name.median.tif" -q
  "$EV" --baseline least-cloudy "${d[@]}" -b "$bands" -o "$W/$name.least.tif" -q
  for m in model median least; do
    "$EV" "$W/$name.$m.tif" "$truth" --json -q |
      /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); r=j["reflectance"]; p=j.get("paper") or {}
print(json.dumps({"set": sys.argv[1], "case": sys.argv[2], "method": sys.argv[3], "mae": r["mae"], "psnr": r["psnr"], "ssim": r["ssim"], "paper_psnr": p.get("psnr"), "paper_ssim": p.get("ssim")}))' "$set" "$name" "$m" >>"$W/results.jsonl"
  done
}

# 1. held-out Berlin, simulated clouds
if [ ! -f "$ROOT/build/default-model/berlin_test.tif" ]; then
  B="$DATA/s2_berlin_l1c/IMG_DATA"
  gdalbuildvrt -q -separate "$W/berlin.vrt" "$B"/T33UUU_20170216T102101_B04.jp2 "$B"/T33UUU_20170216T102101_B03.jp2 \
    "$B"/T33UUU_20170216T102101_B02.jp2 "$B"/T33UUU_20170216T102101_B08.jp2
  gdal_translate -q -srcwin 1024 0 512 768 "$W/berlin.vrt" "$ROOT/build/default-model/berlin_test.tif"
fi
for s in 1 2 3; do
  "$SIM" "$ROOT/build/default-model/berlin_test.tif" -b 1,2,3 --seed $((900 + s)) --out-prefix "$W/berlin_s$s" -q
  run_case berlin-heldout "berlin_s$s" "$W/berlin_s${s}_clear.tif" 1,2,3 "$W/berlin_s${s}_date1.tif" "$W/berlin_s${s}_date2.tif" "$W/berlin_s${s}_date3.tif"
done

# 2. CBERS-4 AWFI real clouds (B15 red, B14 green, B13 blue; Int16 reflectance x 10000)
C="$DATA/cbers4_awfi_series/stack_2017-2018"
cbers_rgb() { gdalbuildvrt -q -separate "$W/cbers_$1.vrt" "$C/CBERS-4_AWFI_B15_$1.tif" "$C/CBERS-4_AWFI_B14_$1.tif" "$C/CBERS-4_AWFI_B13_$1.tif"; echo "$W/cbers_$1.vrt"; }
run_case cbers-real cbers_2017 "$(cbers_rgb 2017-11-01)" 1,2,3 "$(cbers_rgb 2017-10-16)" "$(cbers_rgb 2017-11-17)" "$(cbers_rgb 2017-12-03)"
run_case cbers-real cbers_2018 "$(cbers_rgb 2018-03-22)" 1,2,3 "$(cbers_rgb 2018-02-02)" "$(cbers_rgb 2018-02-18)" "$(cbers_rgb 2018-03-06)"

# 3. SEN12MS-CR pairs (13-band L1C; R,G,B = B4,B3,B2)
for f in "$DATA"/sen12mscr_pairs/s2_cloudy/*.tif; do
  n=$(basename "$f" .tif)
  gdal_translate -q -b 4 -b 3 -b 2 "$DATA/sen12mscr_pairs/s2_cloudfree/$n.tif" "$W/s12_${n}_truth.tif"
  run_case sen12mscr-real "s12_$n" "$W/s12_${n}_truth.tif" 4,3,2 "$f" "$f" "$f"
done

/usr/bin/python3 - "$W/results.jsonl" <<'PYEOF' | tee "$W/table.md"
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
agg = collections.OrderedDict()
for r in rows:
    agg.setdefault((r["set"], r["method"]), []).append(r)
names = {"model": "diffcr default model", "median": "per-pixel median", "least": "least-cloudy date"}
print("| set | method | cases | MAE (refl.) | PSNR (refl.) | SSIM (refl.) | paper PSNR | paper SSIM |")
print("|---|---|---|---|---|---|---|---|")
mean = lambda v: sum(v) / len(v) if v else float("nan")
for (s, m), rs in agg.items():
    pp = [r["paper_psnr"] for r in rs if r["paper_psnr"] is not None]
    ps = [r["paper_ssim"] for r in rs if r["paper_ssim"] is not None]
    print("| %s | %s | %d | %.4f | %.2f | %.4f | %s | %s |" % (s, names[m], len(rs), mean([r["mae"] for r in rs]),
          mean([r["psnr"] for r in rs]), mean([r["ssim"] for r in rs]),
          "%.2f" % mean(pp) if pp else "-", "%.4f" % mean(ps) if ps else "-"))
PYEOF
