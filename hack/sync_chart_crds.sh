#!/usr/bin/env bash
# Copies the generated CRDs (crds/*.yaml, written by `lmscale crd`) into the Helm chart's
# crds/, byte for byte. Run after regenerating the CRDs; tests/unit/chart/test_chart_crds.py
# fails while the two copies differ.
#   usage: hack/sync_chart_crds.sh [--check]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/crds"
dst="$root/charts/lmscale/crds"
check=0
[[ "${1:-}" == "--check" ]] && check=1

shopt -s nullglob
files=("$src"/*.yaml)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "no CRDs in $src: run 'lmscale crd' first" >&2
  exit 1
fi
mkdir -p "$dst"
status=0
for f in "${files[@]}"; do
  name="$(basename "$f")"
  if cmp -s "$f" "$dst/$name"; then
    continue
  fi
  if [[ $check == 1 ]]; then
    echo "out of date: charts/lmscale/crds/$name (run hack/sync_chart_crds.sh)" >&2
    status=1
  else
    cp "$f" "$dst/$name"
    echo "updated charts/lmscale/crds/$name"
  fi
done
exit $status
