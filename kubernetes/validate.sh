#!/usr/bin/env bash
# Validates the manifests against a real kube-apiserver: `kubectl apply --dry-run=server` of
# kubernetes/ (the services) and kubernetes/stack/ (InfluxDB + Telegraf), failing on any error and on
# any Pod Security "restricted" warning.
#
# Usage: kubernetes/validate.sh KUBECONFIG
# Server-side dry-run cannot create a namespace and fill it in the same call, so the two Namespace
# objects (podtype, podtype-stack) are applied for real first; that is idempotent and creates nothing
# else. KUBECTL overrides the kubectl binary.
set -euo pipefail
cd "$(dirname "$0")/.."

kubeconfig=${1:-}
[[ -n $kubeconfig && -r $kubeconfig ]] || { echo "usage: kubernetes/validate.sh KUBECONFIG" >&2; exit 2; }
kubectl=${KUBECTL:-kubectl}
k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

k apply -f kubernetes/base/namespace.yaml -f kubernetes/stack/namespace.yaml >/dev/null

status=0
for dir in kubernetes kubernetes/stack; do
  out=$(k apply --dry-run=server -k "$dir" 2>&1) || status=1
  echo "$out" | sed "s|^|$dir: |"
  if grep -q 'would violate PodSecurity' <<<"$out"; then
    echo "$dir: Pod Security violation" >&2
    status=1
  fi
done
if [[ $status == 0 ]]; then
  echo "validate: manifests accepted by the API server (server-side dry run)"
fi
exit $status
