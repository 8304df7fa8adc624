#!/usr/bin/env bash
# kind, for laptops with Docker: a kind cluster plus the same simulated GPU node pools
# (kwok, in the cluster) and the same Prometheus (on the host) as the local control plane.
# Then: LMSCALE_TEST_KUBECONFIG=1 KUBECONFIG=$(kind get kubeconfig-path) ... make test
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/localcluster/versions.env
name="${KIND_CLUSTER_NAME:-lmscale}"
lmscale=.venv/bin/lmscale
if ! kind get clusters | grep -qx "$name"; then
  kind create cluster --name "$name" --image "kindest/node:${KUBERNETES_VERSION}" --wait 120s
fi
kubectl config use-context "kind-$name"
# kwok's controller and CRDs from its release, then our Stages and GPU nodes.
kubectl apply -f "https://github.com/kubernetes-sigs/kwok/releases/download/${KWOK_VERSION}/kwok.yaml"
kubectl -n kube-system rollout status deployment/kwok-controller --timeout=120s
$lmscale cluster manifests | kubectl apply --server-side --field-manager=lmscale-devcluster -f -
kubectl apply --server-side -f crds/
$lmscale cluster prometheus
cat <<MSG
kind cluster "$name" is ready with simulated GPU nodes.
  export LMSCALE_TEST_KUBECONFIG=1 KUBECONFIG=\$HOME/.kube/config
  export LMSCALE_PROMETHEUS_URL=http://127.0.0.1:19090 LMSCALE_PROMETHEUS_TARGETS=$PWD/.localcluster/prometheus/targets
  make test
MSG
