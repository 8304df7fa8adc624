#!/usr/bin/env bash
# Installs the system packages the local cluster needs (Debian), when missing.
# Go comes with the machine (or use KUBEBUILDER_ASSETS); openssl comes from Debian. Prometheus
# is built from the Go module proxy (Debian's lacks Kubernetes service discovery).
# As root, also the real node's parts: containerd, runc, the CNI plugins, conntrack, iptables,
# socat (the in-cluster API forwarder), and what builds its images (buildah, debootstrap, and
# gcc's static libc for the pause container).
set -euo pipefail
missing=()
sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
need() { command -v "$1" >/dev/null || [[ -e "$1" ]] || missing+=("$2"); }
need openssl openssl
if [[ $(id -u) == 0 && "${LMSCALE_REAL_NODE:-1}" != 0 ]]; then
  need containerd containerd
  need runc runc
  need /usr/lib/cni/bridge containernetworking-plugins
  need conntrack conntrack
  need iptables iptables
  need socat socat
  need buildah buildah
  need debootstrap debootstrap
  need /usr/lib/x86_64-linux-gnu/libc.a libc6-dev
fi
if ((${#missing[@]})); then
  echo "installing ${missing[*]} from Debian" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
