#!/usr/bin/env bash
# Builds one local-cluster component from the Go module proxy into a cache keyed by version,
# and prints the directory that holds its binaries. Reuses the cache when it is complete.
#   usage: build.sh kubernetes|etcd|kwok|helm|prometheus
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
component="$1"
cache_root="${LMSCALE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lmscale/bin}"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

k8s_ldflags() {  # version variables of k8s.io/component-base/version, as release builds set them
  local v="$1" major minor
  major="${v#v}"; major="${major%%.*}"
  minor="${v#v*.}"; minor="${minor%%.*}"
  local p=k8s.io/component-base/version
  echo "-s -w -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor" \
       "-X $p.gitTreeState=clean -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=$build_date"
}

case "$component" in
  kubernetes) version="$KUBERNETES_VERSION"; bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
    pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
          k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
          k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
    ldflags="$(k8s_ldflags "$version")" ;;
  etcd) version="$ETCD_VERSION"; bins=(etcd); pkgs=(go.etcd.io/etcd/server/v3)
    ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=release" ;;
  kwok) version="$KWOK_VERSION"; bins=(kwok); pkgs=(sigs.k8s.io/kwok/cmd/kwok)
    ldflags="-s -w" ;;  # kwok embeds its own version
  helm) version="$HELM_VERSION"; bins=(helm); pkgs=(helm.sh/helm/v3/cmd/helm)
    kminor="${KUBERNETES_VERSION#v*.}"; kminor="${kminor%%.*}"
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kminor"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kminor" ;;
  # Debian's prometheus is built without Kubernetes service discovery; this one keeps only
  # it (and the built-in file discovery). Module v0.3XX.Y is Prometheus 3.XX.Y.
  prometheus) version="$PROMETHEUS_VERSION"; bins=(prometheus promtool)
    pkgs=(github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool)
    tags=remove_all_sd,enable_kubernetes_sd
    release="3.${version#v0.3}"
    ldflags="-s -w -X github.com/prometheus/common/version.Version=$release -X github.com/prometheus/common/version.Branch=HEAD" ;;
  *) echo "unknown component: $component (want kubernetes, etcd, kwok, helm or prometheus)" >&2; exit 2 ;;
esac

out="$cache_root/$component-$version"
complete=1
for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || complete=0; done
if [[ $complete == 0 ]]; then
  echo "building $component $version into $out (cold builds take minutes)" >&2
  tmp="$out.tmp.$$"; mkdir -p "$tmp"
  (cd "$here/go/$component" && go build -trimpath -tags "${tags:-}" -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
  if [[ $component == etcd ]]; then mv "$tmp/server" "$tmp/etcd"; fi  # the package dir is server/
  rm -rf "$out"; mv "$tmp" "$out"
fi
echo "$out"
