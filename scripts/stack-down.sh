#!/usr/bin/env bash
# Stops the servers scripts/stack-up.sh started (Telegraf, InfluxDB, kube-apiserver, etcd): SIGTERM,
# then SIGKILL after a timeout, and removes their pid files. Only processes whose pid file, binary and
# command line match are signalled; anything else (a system etcd, a recycled pid) is left alone.
# Idempotent: stopping a stopped stack does nothing.
#
#   scripts/stack-down.sh           stop; keep data, credentials and ports for the next stack-up
#   scripts/stack-down.sh --purge   stop and delete .stack/ (data, credentials, certificates, logs)
#
# The build cache (.cache/stack) is never touched.
set -euo pipefail
umask 077

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
case "${1:-}" in
  "") ;;
  --purge) purge=1 ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1 (want --purge or nothing)" ;;
esac

if [[ ! -d $STATE ]]; then
  log "no $STATE: nothing to stop"
  exit 0
fi

lock
log "stopping the local stack"
for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do
  stop_server "${SERVERS[i]}" 30
  rm -f "$RUN/${SERVERS[i]}.fingerprint"
done

if ((purge)); then
  # Refuse to purge under a server that is still running (it would keep writing into deleted files).
  for s in "${SERVERS[@]}"; do
    if pid=$(pid_of "$s"); then die "$s (pid $pid) still runs; not purging"; fi
  done
  rm -rf "$STATE"
  log "purged $STATE"
fi
log "stack is down"
