#!/usr/bin/env bash
# Proves the services' RBAC is least privilege: every verb they need is allowed and a list of verbs
# they must not have is denied, checked with `kubectl auth can-i` while impersonating each service
# account (user system:serviceaccount:<ns>:<name> plus the groups a real token carries).
#
# Usage: kubernetes/verify-rbac.sh [--namespace NS] [--stack] KUBECONFIG
#   KUBECONFIG   a kubeconfig allowed to impersonate (cluster admin); the RBAC of kubernetes/base
#                (and kubernetes/stack with --stack) must already be applied to that cluster
#   --namespace  namespace the services run in (default podtype)
#   --stack      also check Telegraf's role from kubernetes/stack (service account podtype-stack:telegraf)
# Exit status: 0 all checks as expected, 1 a check failed, 2 usage or cluster problems.
set -euo pipefail

ns=podtype
stack=0
kubeconfig=
kubectl=${KUBECTL:-kubectl}
while [[ $# -gt 0 ]]; do
  case $1 in
    --namespace) ns=${2:?--namespace needs a value}; shift 2 ;;
    --stack) stack=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "verify-rbac: unknown flag $1" >&2; exit 2 ;;
    *) kubeconfig=$1; shift ;;
  esac
done
[[ -n $kubeconfig ]] || { echo "verify-rbac: KUBECONFIG argument required (see --help)" >&2; exit 2; }
[[ -r $kubeconfig ]] || { echo "verify-rbac: cannot read kubeconfig $kubeconfig" >&2; exit 2; }
k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

for cr in podtype:pod-watcher podtype:metrics-collector $([[ $stack == 1 ]] && echo podtype:telegraf); do
  if ! k get clusterrole "$cr" >/dev/null 2>&1; then
    echo "verify-rbac: ClusterRole $cr not found: apply the manifests first (kubectl apply -k kubernetes/)" >&2
    exit 2
  fi
done

fails=0
checks=0
# check EXPECT SA_NAMESPACE SA_NAME VERB RESOURCE [kubectl auth can-i flags...]
check() {
  local expect=$1 sans=$2 sa=$3 verb=$4 res=$5
  shift 5
  local got=deny
  if k auth can-i "$verb" "$res" "$@" \
      --as="system:serviceaccount:$sans:$sa" \
      --as-group=system:serviceaccounts --as-group="system:serviceaccounts:$sans" \
      --as-group=system:authenticated >/dev/null 2>&1; then
    got=allow
  fi
  checks=$((checks + 1))
  local mark=ok
  if [[ $got != "$expect" ]]; then
    mark=FAIL
    fails=$((fails + 1))
  fi
  printf '%-4s %-5s %-17s %-7s %s %s\n' "$mark" "$expect" "$sa" "$verb" "$res" "$*"
}

w=pod-watcher
# pod-watcher: informer, annotation patches, node image sizes, Events, its Lease.
check allow "$ns" $w get pods --all-namespaces
check allow "$ns" $w list pods --all-namespaces
check allow "$ns" $w watch pods --all-namespaces
check allow "$ns" $w patch pods -n default
check allow "$ns" $w list nodes
check allow "$ns" $w watch nodes
check allow "$ns" $w create events -n default
check allow "$ns" $w patch events -n default
check allow "$ns" $w create events.events.k8s.io -n default
check allow "$ns" $w create leases.coordination.k8s.io -n "$ns"
check allow "$ns" $w get leases.coordination.k8s.io/podtype-pod-watcher -n "$ns"
check allow "$ns" $w update leases.coordination.k8s.io/podtype-pod-watcher -n "$ns"
# ... and nothing more.
check deny "$ns" $w update pods -n default
check deny "$ns" $w delete pods -n default
check deny "$ns" $w create pods -n default
check deny "$ns" $w create pods -n default --subresource=exec
check deny "$ns" $w patch pods -n default --subresource=status
check deny "$ns" $w create pods -n default --subresource=eviction
check deny "$ns" $w get secrets -n "$ns"
check deny "$ns" $w list secrets --all-namespaces
check deny "$ns" $w list configmaps -n kube-system
check deny "$ns" $w patch nodes
check deny "$ns" $w get nodes --subresource=proxy
check deny "$ns" $w delete events -n default
check deny "$ns" $w update leases.coordination.k8s.io/other-controller -n "$ns"
check deny "$ns" $w delete leases.coordination.k8s.io/podtype-pod-watcher -n "$ns"
check deny "$ns" $w create leases.coordination.k8s.io -n kube-system
check deny "$ns" $w create serviceaccounts/token -n "$ns"
check deny "$ns" $w '*' '*' --all-namespaces

c=metrics-collector
# metrics-collector: reads the pod inventory and node image lists.
check allow "$ns" $c get pods --all-namespaces
check allow "$ns" $c list pods --all-namespaces
check allow "$ns" $c get nodes
check allow "$ns" $c list nodes
check deny "$ns" $c watch pods --all-namespaces
check deny "$ns" $c patch pods -n default
check deny "$ns" $c delete pods -n default
check deny "$ns" $c create pods -n default --subresource=exec
check deny "$ns" $c get secrets -n "$ns"
check deny "$ns" $c list secrets --all-namespaces
check deny "$ns" $c create events -n default
check deny "$ns" $c create leases.coordination.k8s.io -n "$ns"
check deny "$ns" $c patch nodes
check deny "$ns" $c get nodes --subresource=proxy
check deny "$ns" $c get nodes --subresource=stats

if [[ $stack == 1 ]]; then
  t=telegraf
  # Telegraf: the kubelet's /stats/summary and /pods, nothing on the API.
  check allow podtype-stack $t get nodes --subresource=stats
  check allow podtype-stack $t get nodes --subresource=pods
  check deny podtype-stack $t get nodes --subresource=proxy
  check deny podtype-stack $t create nodes --subresource=proxy
  check deny podtype-stack $t list nodes
  check deny podtype-stack $t list pods --all-namespaces
  check deny podtype-stack $t get secrets -n podtype-stack
fi

echo "verify-rbac: $checks checks, $fails unexpected"
[[ $fails == 0 ]]
