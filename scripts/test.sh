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
export CGO_ENABLED=0
go test -tags integration -count=1 -timeout 45m ${GOTESTFLAGS:-} \
  ./shared/... ./metrics-collector/... ./pod-watcher/...
