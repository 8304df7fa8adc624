#!/usr/bin/env bash
# Installs the system packages the local cluster needs (Debian), when missing.
# Go comes with the machine (or use KUBEBUILDER_ASSETS); Prometheus and openssl come from Debian.
set -euo pipefail
missing=()
command -v prometheus >/dev/null || [[ -n "${LMSCALE_PROMETHEUS_BIN:-}" ]] || missing+=(prometheus)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  echo "installing ${missing[*]} from Debian" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's package starts a system Prometheus on :9090; the local cluster runs its own.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  $sudo systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
fi
