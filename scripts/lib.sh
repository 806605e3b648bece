# shellcheck shell=bash
# Helpers shared by stack-up.sh and stack-down.sh. Sourced, never run; expects `set -euo pipefail`.
#
# State layout (everything git-ignored, files 0600 because of umask 077):
#   .stack/settings            ports and Telegraf settings chosen by the first stack-up (reused later)
#   .stack/credentials         InfluxDB passwords, apiserver admin token
#   .stack/env                 what `. .stack/env` exports for services and tests
#   .stack/run/<name>.pid      pid of a server stack-up started; <name>.fingerprint = its full config
#   .stack/logs/<name>.log     server logs
#   .stack/{etcd,influxdb,telegraf,pki}/, .stack/tokens.csv, .stack/kubeconfig
#   .cache/stack/bin/          built binaries, each with a <name>.version file (STACK_CACHE_DIR overrides)

STACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$STACK_ROOT/.stack
CACHE=${STACK_CACHE_DIR:-$STACK_ROOT/.cache/stack}
BIN=$CACHE/bin
RUN=$STATE/run
# shellcheck disable=SC2034
LOGS=$STATE/logs

# The servers in start order; stack-down stops them in reverse.
# shellcheck disable=SC2034
SERVERS=(etcd kube-apiserver influxd telegraf)

log() { printf '%s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# now_ms prints a monotonic-enough wall clock in milliseconds (for durations only).
now_ms() { date +%s%3N; }

# elapsed START_MS prints seconds since START_MS with one decimal.
elapsed() {
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100))
}

# lock takes an exclusive lock on the state dir so parallel stack-up/stack-down calls (several
# engineers, test.sh) do not race; waits up to 20 minutes because a first build takes minutes.
lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  if ! flock -n 9; then
    log "another stack-up/stack-down holds $STATE/.lock; waiting..."
    flock -w 1200 9 || die "timed out waiting for $STATE/.lock"
  fi
}

# pid_of NAME prints the recorded pid of server NAME when that process is alive and still is the
# server we started (its executable is our binary and its command line names our state dir);
# returns 1 otherwise. A pid that was recycled by another program is never reported.
pid_of() {
  local name=$1 pidfile=$RUN/$1.pid pid exe want
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -e /proc/$pid ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  want=$(readlink -f "$BIN/$name" 2>/dev/null) || return 1
  # A rebuilt binary replaces ours by rename: the running process then shows the same path.
  [[ $exe == "$want" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE/" || return 1
  printf '%s\n' "$pid"
}

# describe_pid PID prints "PID (exe)" for messages about processes that are not ours.
describe_pid() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null || echo gone)
  printf '%s (%s)' "$1" "$exe"
}

# stop_server NAME [TIMEOUT] sends SIGTERM to our server NAME, waits, then SIGKILLs; removes its
# pid file. Does nothing for a server that is not running; never signals a process that is not ours.
stop_server() {
  local name=$1 timeout=${2:-30} pid i
  local pidfile=$RUN/$name.pid
  if ! pid=$(pid_of "$name"); then
    if [[ -f $pidfile ]]; then
      local old
      old=$(<"$pidfile")
      if [[ $old =~ ^[0-9]+$ && -e /proc/$old ]]; then
        log "  $name: pid $(describe_pid "$old") is not the $name stack-up started; not touching it"
      fi
      rm -f "$pidfile"
    fi
    return 0
  fi
  log "  stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    [[ -e /proc/$pid ]] || break
    # A zombie (our own child that exited) counts as stopped.
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
    sleep 0.1
  done
  if [[ -e /proc/$pid ]] && pid_of "$name" >/dev/null; then
    log "  $name did not stop within ${timeout}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
}

# port_in_use PORT succeeds when some socket listens on TCP PORT (any address, IPv4 or IPv6).
port_in_use() {
  local hex
  hex=$(printf ':%04X' "$1")
  awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# pick_port EXCLUDE... prints a random free port in 20000-32767 (below Linux's ephemeral range, so
# outgoing connections do not take it between our check and the server's bind), not in EXCLUDE.
pick_port() {
  local p i x taken
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
    taken=0
    for x in "$@"; do [[ $x == "$p" ]] && taken=1; done
    ((taken)) && continue
    port_in_use "$p" && continue
    printf '%s\n' "$p"
    return 0
  done
  die "found no free TCP port on 127.0.0.1 in 20000-32767 after 200 tries"
}

# require_free_port PORT WHAT fails with a message naming the port when something listens on it.
require_free_port() {
  if port_in_use "$1"; then
    local owner=""
    if command -v ss >/dev/null 2>&1; then
      owner=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -1 | sed -n 's/.*users:((\(.*\)))/ by \1/p')
    fi
    die "port 127.0.0.1:$1 ($2) is already in use${owner}; free it, or run scripts/stack-down.sh --purge to pick new ports"
  fi
}

# write_if_changed PATH: stdin becomes PATH's content only when it differs (atomic rename), so a
# second stack-up rewrites nothing. Prints "changed" or "same".
write_if_changed() {
  local path=$1 tmp
  tmp=$(mktemp "$path.XXXXXX")
  cat >"$tmp"
  if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
    echo same
  else
    chmod 600 "$tmp"
    mv -f "$tmp" "$path"
    echo changed
  fi
}

# tail_log FILE [N] prints the last N lines of a server log, indented, for failure messages.
tail_log() {
  local file=$1 n=${2:-40}
  if [[ -s $file ]]; then
    log "---- last $n lines of $file ----"
    tail -n "$n" "$file" | sed 's/^/  | /' >&2
    log "----"
  else
    log "($file is empty)"
  fi
}

# curl_local: curl for our loopback servers, never through a proxy from the environment.
curl_local() { curl --noproxy '*' -sS --connect-timeout 2 --max-time 10 "$@"; }

# shq VALUE prints VALUE single-quoted for a shell file (`export K='v'`).
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
