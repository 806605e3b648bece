#!/usr/bin/env bash
# The project's test command (make test, .ci/run): unit tests and the integration tests, which run
# against the real local stack. Starts the stack when it is not running and stops it again afterwards,
# unless KEEP_STACK=1; a stack that was already up is left as it was.
set -euo pipefail
cd "$(dirname "$0")/.."

started=0
if ! scripts/stack-up.sh --check >/dev/null 2>&1; then
  started=1
  scripts/stack-up.sh
fi
cleanup() {
  if [[ $started == 1 && ${KEEP_STACK:-0} != 1 ]]; then
    scripts/stack-down.sh || true
  fi
}
trap cleanup EXIT

# shellcheck disable=SC1091
. .stack/env
export CGO_ENABLED=0 KUBECTL=$STACK_BIN/kubectl

echo "--- manifests, least-privilege RBAC and training-pod scripts against the local API server"
kubernetes/validate.sh "$KUBECONFIG"
"$KUBECTL" --kubeconfig "$KUBECONFIG" apply -f kubernetes/base/namespace.yaml \
  -f kubernetes/base/rbac-pod-watcher.yaml -f kubernetes/base/rbac-metrics-collector.yaml
kubernetes/verify-rbac.sh "$KUBECONFIG"
scripts/training-pods/test.sh

echo "--- go test (unit + integration)"
# shellcheck disable=SC2086 # GOTESTFLAGS is a list of flags
go test -tags integration -count=1 -timeout 45m ${GOTESTFLAGS:-} \
  ./shared/... ./metrics-collector/... ./pod-watcher/...
