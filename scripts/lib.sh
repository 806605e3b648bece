# shellcheck shell=bash
# Helpers shared by stack-up.sh, stack-down.sh and the scripts that run the services against the stack
# (test.sh, demo.sh, e2e.sh). Sourced, never run; expects `set -euo pipefail`.
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

# DIE_PREFIX names the script in die's messages.
DIE_PREFIX=stack
log() { printf '%s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "$DIE_PREFIX" "$*" >&2; exit 1; }

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

# ---------------------------------------------------------------------------------------------------
# Running the services and the simulator against the stack (test.sh, demo.sh, e2e.sh). The functions
# marked "needs .stack/env" expect `. .stack/env` to have run.

# seconds DURATION prints a duration like 4m, 90s or 90 in whole seconds.
seconds() {
  case $1 in
    *[0-9]m) echo $((${1%m} * 60)) ;;
    *[0-9]s) echo "${1%s}" ;;
    *) echo $(($1)) ;;
  esac
}

# stack_up [INTERVAL] starts the local stack or reuses it (stack-up.sh is idempotent); with INTERVAL,
# the stack's Telegraf collects every INTERVAL (a running one with another interval is restarted, and
# the interval sticks). Sets STACK_STARTED=1 when the stack was not up before, for stop_stack_if_started.
STACK_STARTED=0
stack_up() {
  if ! "$STACK_ROOT/scripts/stack-up.sh" --check >/dev/null 2>&1; then STACK_STARTED=1; fi
  if [[ -n ${1:-} ]]; then
    TELEGRAF_INTERVAL=$1 "$STACK_ROOT/scripts/stack-up.sh" | tail -n 3
  else
    "$STACK_ROOT/scripts/stack-up.sh" | tail -n 3
  fi
}

# stop_stack_if_started stops the stack again when stack_up started it, unless KEEP_STACK=1.
stop_stack_if_started() {
  if [[ $STACK_STARTED == 1 && ${KEEP_STACK:-0} != 1 ]]; then
    "$STACK_ROOT/scripts/stack-down.sh" || true
  fi
}

# build_services builds metrics-collector, pod-watcher and cluster-sim into bin/, as `make build` does.
build_services() {
  mkdir -p "$STACK_ROOT/bin"
  (cd "$STACK_ROOT" && CGO_ENABLED=0 go build -trimpath -o bin/ \
    ./metrics-collector/cmd/metrics-collector ./pod-watcher/cmd/pod-watcher ./shared/cmd/cluster-sim)
}

# apply_rbac applies the podtype namespace and both services' ServiceAccounts, (Cluster)Roles and
# bindings from kubernetes/base as the stack's admin (idempotent). Needs .stack/env.
apply_rbac() {
  local base=$STACK_ROOT/kubernetes/base
  "$STACK_BIN/kubectl" --kubeconfig "$KUBECONFIG" apply -f "$base/namespace.yaml" \
    -f "$base/rbac-pod-watcher.yaml" -f "$base/rbac-metrics-collector.yaml"
}

# Background processes: start_bg records every process it starts in BG_PIDS, stop_pids and stop_bg
# end them (and forget them, so a recycled pid is never signalled). Call stop_bg from an EXIT trap.
BG_PIDS=()
BG_PID=

# start_bg LOG CMD [ARG...] runs CMD in the background with stdout and stderr in LOG (truncated) and
# records its pid in BG_PID and BG_PIDS. `env VAR=value... CMD` gives CMD its own environment (env
# execs CMD, so the pid is CMD's).
start_bg() {
  local out=$1
  shift
  "$@" >"$out" 2>&1 </dev/null &
  BG_PID=$!
  BG_PIDS+=("$BG_PID")
}

# alive PID succeeds while PID runs as a child of this script: not when it exited (reaped or not), and
# not when the pid was recycled by another program after bash reaped our child.
alive() {
  local stat state ppid
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r state ppid _ <<<"${stat##*) }"
  [[ $state != Z && $ppid == "$$" ]]
}

# stop_pids TIMEOUT PID... sends SIGTERM to the given children of this shell, waits up to TIMEOUT
# seconds for them to exit (a simulator deletes its pods and nodes then, a pod-watcher releases its
# Lease), SIGKILLs what still runs, reaps them all and removes them from BG_PIDS.
stop_pids() {
  local timeout=$1 p i running
  shift
  for p in "$@"; do
    if alive "$p"; then kill -TERM "$p" 2>/dev/null || true; fi
  done
  for ((i = 0; i < timeout * 10; i++)); do
    running=0
    for p in "$@"; do
      if alive "$p"; then running=1; fi
    done
    if ((!running)); then break; fi
    sleep 0.1
  done
  for p in "$@"; do
    if alive "$p"; then
      log "process $(describe_pid "$p") did not stop within ${timeout}s: SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  local keep=() q
  for q in "${BG_PIDS[@]}"; do
    for p in "$@"; do [[ $q == "$p" ]] && continue 2; done
    keep+=("$q")
  done
  BG_PIDS=("${keep[@]}")
}

# stop_bg [TIMEOUT] stops every process start_bg started that is still ours (stop_pids, default 60s).
stop_bg() {
  if ((${#BG_PIDS[@]})); then stop_pids "${1:-60}" "${BG_PIDS[@]}"; fi
}

# require_sim_addr_free fails with a message when something listens on SIM_KUBELET_ADDR, the address
# the stack's Telegraf scrapes and the simulator must serve (a running `make demo` or `make sim`?).
# Needs .stack/env.
require_sim_addr_free() {
  local port=${SIM_KUBELET_ADDR##*:} owner=""
  port_in_use "$port" || return 0
  if command -v ss >/dev/null 2>&1; then
    owner=$(ss -Hltnp "sport = :$port" 2>/dev/null | head -1 | sed -n 's/.*users:((\(.*\)))/ by \1/p')
  fi
  die "the simulator's address $SIM_KUBELET_ADDR (the one the stack's Telegraf scrapes) is in use${owner}: a running 'make demo' or 'make sim'? Stop it and try again"
}

# start_sim LOG NAMESPACE SEED PODS_PER_TYPE TYPES [FLAG...] runs bin/cluster-sim in the background
# (start_bg) on SIM_KUBELET_ADDR with nodes sim-node-1..SIM_NODES, which the stack's Telegraf scrapes,
# and PODS_PER_TYPE pods of each of TYPES in NAMESPACE, as the stack's admin; stopped with SIGTERM it
# deletes its pods and nodes again. Fails when the address is taken. Needs .stack/env.
start_sim() {
  local out=$1 ns=$2 seed=$3 n=$4 types=$5
  shift 5
  require_sim_addr_free
  start_bg "$out" "$STACK_ROOT/bin/cluster-sim" --namespace "$ns" --kubelet-addr "$SIM_KUBELET_ADDR" \
    --nodes "$SIM_NODES" --seed "$seed" --pods-per-type "$n" --types "$types" --cleanup "$@"
}
