#!/usr/bin/env bash
# Deletes the kind cluster and stops the host Prometheus that kind-up started.
set -euo pipefail
cd "$(dirname "$0")/../.."
kind delete cluster --name "${KIND_CLUSTER_NAME:-lmscale}"
.venv/bin/lmscale cluster down
