#!/usr/bin/env bash
# The example plugin, installed (pip install ./examples/gated-sum-plugin), used from the CLI with no
# --import: its entry point registers the `gated-sum` fusion. Trains a short run, then evaluates,
# exports and reports it. Usage: bash examples/gated-sum-plugin/demo.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-runs/gated-sum-demo}"
# the listing is read whole first: `cmd | grep -q` under pipefail fails when grep exits before cmd writes
fusions="$(modalfuse list fusions)"
grep -q '^gated-sum ' <<<"$fusions" || { echo "gated-sum is not registered: pip install $here; modalfuse list fusions printed:" >&2; echo "$fusions" >&2; exit 1; }
run_dir="$(modalfuse train "$here/configs/gated-sum.yaml" --set train.threads=1 --set train.progress=log --out "$out/runs" | tail -n 1)"
modalfuse evaluate "$run_dir" --split test
modalfuse export "$run_dir" --out "$out/gated-sum.pt2"
modalfuse report "$run_dir" --out "$out/report"
echo "gated-sum demo: run $run_dir, model $out/gated-sum.pt2, report $out/report/report.md"
