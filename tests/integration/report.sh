# diffcr integration tests — the PASS/FAIL reporter shared by decloud_common.sh and
# plugin_common.sh (sourced). finish exits 1 if anything failed.
FAILS=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
# run_ok NAME CMD...: the command must succeed (its output goes to NAME.log, shown on failure)
run_ok() { local name="$1"; shift; if "$@" >"$name.log" 2>&1; then pass "$name"; else fail "$name (rc=$?)"; cat "$name.log"; fi; }
finish() { if [ "$FAILS" -ne 0 ]; then echo "$FAILS failure(s)"; exit 1; fi; echo "all passed"; exit 0; }
