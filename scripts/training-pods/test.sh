#!/usr/bin/env bash
# Tests scripts/training-pods.sh against the local stack's kube-apiserver (. .stack/env):
#  1. --dry-run output is accepted by `kubectl apply --dry-run=server`, with the expected objects and
#     labels (servers labelled with their type, load generators as loadgen, all part-of=podtype-training);
#  2. a real apply is idempotent (second run: everything unchanged) and converges when N shrinks;
#  3. --delete removes every labelled object.
# Runs in a namespace of its own. Without .stack/env it fails, or skips when STACK_OPTIONAL=1.
# `check && pass || fail` is safe here: pass only prints.
# shellcheck disable=SC2015
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ ! -f .stack/env ]]; then
  if [[ ${STACK_OPTIONAL:-0} == 1 ]]; then
    echo "SKIP training-pods test: no .stack/env (run make stack-up)"
    exit 0
  fi
  echo "FAIL training-pods test: no .stack/env (run make stack-up, or STACK_OPTIONAL=1 to skip)" >&2
  exit 1
fi
# shellcheck disable=SC1091
. .stack/env
export KUBECTL=${KUBECTL:-$STACK_BIN/kubectl}
k() { "$KUBECTL" "$@"; }
script=scripts/training-pods.sh
ns="podtype-training-test-$(date +%s)-$$"
fails=0
fail() { echo "FAIL $*" >&2; fails=$((fails + 1)); }
pass() { echo "ok   $*"; }
errf=$(mktemp)
cleanup() { rm -f "$errf"; k delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Server-side dry run cannot create the namespace it then fills, so the test creates it first.
k create namespace "$ns" --save-config >/dev/null

per=2
types=8
manifest=$("$script" --dry-run --per-type "$per" --namespace "$ns")
tmpl='{{range .items}}{{.kind}} {{.metadata.name}} {{if eq .kind "Deployment"}}{{index .spec.template.metadata.labels "app.kubernetes.io/name"}} {{index .spec.template.metadata.labels "app.kubernetes.io/part-of"}}{{end}}{{"\n"}}{{end}}'
if ! listing=$(k apply --dry-run=server -f - -o go-template="$tmpl" <<<"$manifest" 2>"$errf"); then
  fail "server dry run rejected the manifests: $(cat "$errf")"
  exit 1
fi
pass "server dry run accepted $(wc -l <<<"$listing") objects"

want=$((3 + types * per * 3)) # namespace, network policy, secret; per instance: server, service, load generator
got=$(wc -l <<<"$listing")
[[ $got == "$want" ]] && pass "object count $got" || fail "object count $got, want $want"

for t in mysql postgres redis memcached nginx httpd mongo rabbitmq; do
  for ((i = 0; i < per; i++)); do
    grep -qx "Deployment $t-$i $t podtype-training" <<<"$listing" || fail "server $t-$i: missing or wrong labels"
    grep -qx "Deployment $t-$i-load loadgen podtype-training" <<<"$listing" || fail "load generator $t-$i-load: missing or wrong labels"
    grep -qx "Service $t-$i " <<<"$listing" || fail "service $t-$i missing"
  done
done
[[ $fails == 0 ]] && pass "labels: servers by type, load generators as loadgen, all part-of=podtype-training"
if grep -q 'would violate PodSecurity' "$errf"; then fail "Pod Security: $(cat "$errf")"; fi

# Real apply: the objects only sit in etcd (the local stack runs no scheduler), which is all we need.
"$script" --per-type "$per" --namespace "$ns" >/dev/null
second=$("$script" --per-type "$per" --namespace "$ns" | grep -v '^training-pods:' || true)
changed=$(grep -cv ' unchanged$' <<<"$second" || true)
[[ $changed == 0 ]] && pass "second apply changed nothing" || fail "second apply changed: $(grep -v ' unchanged$' <<<"$second")"

"$script" --per-type 1 --types mysql,redis --namespace "$ns" >/dev/null
left=$(k get deployments,services -n "$ns" -l app.kubernetes.io/part-of=podtype-training -o name | sort | tr '\n' ' ')
want_left="deployment.apps/mysql-0 deployment.apps/mysql-0-load deployment.apps/redis-0 deployment.apps/redis-0-load service/mysql-0 service/redis-0 "
[[ $left == "$want_left" ]] && pass "converged to --per-type 1 --types mysql,redis" || fail "after shrinking: $left"

"$script" --delete --keep-namespace --namespace "$ns" >/dev/null
rest=$(k get deployments,services,secrets,networkpolicies -n "$ns" -l app.kubernetes.io/part-of=podtype-training -o name)
[[ -z $rest ]] && pass "--delete removed everything" || fail "--delete left: $rest"

for bad in "--per-type 0" "--types mysql,oracle" "--namespace kube-system" "--bogus"; do
  # shellcheck disable=SC2086
  if "$script" $bad --dry-run >/dev/null 2>&1; then fail "accepted bad arguments: $bad"; else pass "rejects $bad"; fi
done

if [[ $fails != 0 ]]; then
  echo "training-pods test: $fails failures" >&2
  exit 1
fi
echo "training-pods test: PASS"
