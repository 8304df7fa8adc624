#!/usr/bin/env bash
# Measures a cold build of every local-cluster component: empty Go build and module caches,
# empty binary cache, everything fetched from the Go module proxy. Prints seconds per part.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
scratch="$(mktemp -d)"
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT
export GOCACHE="$scratch/gocache" GOMODCACHE="$scratch/gomod" LMSCALE_BIN_CACHE="$scratch/bin"
total_start=$(date +%s)
for component in kubernetes etcd kwok helm prometheus; do
  start=$(date +%s)
  bash "$here/localcluster/build.sh" "$component" >/dev/null
  echo "$component: $(( $(date +%s) - start )) s"
done
echo "total: $(( $(date +%s) - total_start )) s"
