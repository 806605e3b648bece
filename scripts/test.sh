#!/usr/bin/env bash
# The project's test command (make test, .ci/run): unit tests and the integration tests, which run
# against the real local stack. Starts the stack when it is not running and stops it again afterwards,
# unless KEEP_STACK=1; a stack that was already up is left as it was.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
DIE_PREFIX="test"

stack_up
trap stop_stack_if_started EXIT

# shellcheck disable=SC1091
. .stack/env
export CGO_ENABLED=0 KUBECTL=$STACK_BIN/kubectl

echo "--- manifests, least-privilege RBAC and training-pod scripts against the local API server"
kubernetes/validate.sh "$KUBECONFIG"
apply_rbac
kubernetes/verify-rbac.sh "$KUBECONFIG"
scripts/training-pods/test.sh

echo "--- end-to-end: both services with exactly their ServiceAccounts' permissions"
scripts/e2e.sh

echo "--- go test (unit + integration)"
# shellcheck disable=SC2086 # GOTESTFLAGS is a list of flags
go test -tags integration -count=1 -timeout 45m ${GOTESTFLAGS:-} \
  ./shared/... ./metrics-collector/... ./pod-watcher/...
