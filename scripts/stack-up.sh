#!/usr/bin/env bash
# Builds (once) and starts the local stack on loopback: etcd, kube-apiserver, InfluxDB 1.8 and a
# Telegraf configured like a k3s DaemonSet, each as the current user on free random ports, with its
# state in .stack/ and its binaries in .cache/stack/bin (STACK_CACHE_DIR overrides).
#
# Idempotent: servers that run with the wanted configuration are reused and nothing they use is
# rewritten; a server whose configuration changed (e.g. TELEGRAF_INTERVAL) is restarted.
#
#   scripts/stack-up.sh           build what is missing, start what is not running, write .stack/env
#   scripts/stack-up.sh --check   exit 0 when every server runs and is healthy; builds/starts nothing
#
# Environment: TELEGRAF_INTERVAL (default 10s) and SIM_NODES (default 3) configure the stack's
# Telegraf; once chosen they stick until changed again or until `stack-down.sh --purge`.
#
# Kubernetes users: .stack/tokens.csv (STACK_TOKEN_FILE) is the apiserver's static token file,
# lines `token,user,uid,"group1,group2"`. It holds the admin (group system:masters) and one line per
# entry of scripts/stack/users.csv (`user,uid,"groups"`), each with a random token kept across runs.
# To add a user: add a line to scripts/stack/users.csv and run stack-up again (the apiserver is
# restarted because it reads the file only at start). Identities a test needs only for itself are
# better ServiceAccounts with a token from the TokenRequest API, which works here (signing key set).
set -euo pipefail
umask 077

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

INFLUXDB_VERSION=v1.8.10
TELEGRAF_VERSION=v1.37.2
KUBE_VERSION=v1.36.3
TELEGRAF_TAGS=custom,inputs.kubernetes,outputs.influxdb,outputs.influxdb_v2
KUBE_BUILD=$STACK_ROOT/scripts/stack/kube-build
USERS_CSV=$STACK_ROOT/scripts/stack/users.csv

INFLUX_DB=k3s_telegraf_ds
INFLUX_ADMIN_USER=podtype_admin
INFLUX_WRITE_USER=telegraf
INFLUX_READ_USER=podtype_reader
KUBE_ADMIN_USER=podtype-admin
SERVICE_CLUSTER_IP_RANGE=10.96.0.0/16

PKI=$STATE/pki
TOKENS=$STATE/tokens.csv
KUBECONFIG_FILE=$STATE/kubeconfig

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

check_only=0
case "${1:-}" in
  "") ;;
  --check) check_only=1 ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; die "unknown argument: $1" ;;
esac

# ---------------------------------------------------------------------------------------------------
# Tools and binaries

# apt_install PKG... installs Debian packages (as root, or through sudo).
apt_install() {
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to apt-get install $*"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null 2>&1 || die "Debian package(s) $* needed, but apt-get is not available; install them by hand"
  log "installing Debian package(s) $* (apt-get)..."
  if ! { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@"; } \
    >"$CACHE/apt.log" 2>&1; then
    tail_log "$CACHE/apt.log" 20
    die "apt-get install $* failed: is a Debian mirror reachable and does it carry the package?"
  fi
}

# ensure_cmd CMD PKG installs Debian package PKG when CMD is missing.
ensure_cmd() {
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
  command -v "$1" >/dev/null 2>&1 || die "$1 is still missing after installing Debian package $2"
}

# ensure_built KEY ESTIMATE WORKDIR NAME... -- GO-INSTALL-ARGS...: go-installs NAME... into $BIN
# unless every NAME exists with KEY in its .version file. Builds into a temporary GOBIN and renames,
# so a running server keeps its (old) executable.
ensure_built() {
  local key=$1 estimate=$2 workdir=$3 names=() name stale=0 why="first time"
  shift 3
  while [[ $1 != -- ]]; do names+=("$1"); shift; done
  shift
  for name in "${names[@]}"; do
    if [[ ! -x $BIN/$name ]]; then
      stale=1
    elif [[ $(cat "$BIN/$name.version" 2>/dev/null) != "$key" ]]; then
      stale=1
      why="version changed"
    fi
  done
  local label="${names[*]}"
  if ((!stale)); then
    log "${label// /+} ${key%% *}: cached"
    return 0
  fi
  command -v go >/dev/null 2>&1 || die "go is not on PATH: Go 1.26 is needed to build ${label}"
  log "building ${label// /+} ${key%% *} ($why, $estimate)..."
  local tmp=$CACHE/build.tmp blog=$CACHE/logs/build-${names[0]}.log t0
  rm -rf "$tmp"
  mkdir -p "$tmp" "$CACHE/logs"
  t0=$(now_ms)
  # CGO_ENABLED=0 as everywhere in the project: static binaries, no C compiler needed, and the same
  # build cache key whether this runs from make (which exports it) or from a shell.
  if ! (cd "$workdir" && env GOWORK=off CGO_ENABLED=0 GOBIN="$tmp" go install "$@") >"$blog" 2>&1; then
    tail_log "$blog" 30
    if grep -qiE 'dial tcp|no such host|proxyconnect|i/o timeout|connection refused|TLS handshake|reading https?://' "$blog"; then
      die "building ${label} failed: the Go module proxy ($(go env GOPROXY)) looks unreachable (see $blog)"
    fi
    die "building ${label} failed (see $blog)"
  fi
  for name in "${names[@]}"; do
    mv -f "$tmp/$name" "$BIN/$name"
    printf '%s\n' "$key" >"$BIN/$name.version"
  done
  rm -rf "$tmp"
  log "built ${label// /+} in $(elapsed "$t0")"
}

build_all() {
  mkdir -p "$BIN"
  local ld
  ld="-s -w -X main.version=${INFLUXDB_VERSION#v}"
  GOFLAGS=-mod=mod ensure_built "$INFLUXDB_VERSION cgo=0 ldflags=$ld" "~1 min" "$CACHE" influxd -- \
    -trimpath -ldflags "$ld" "github.com/influxdata/influxdb/cmd/influxd@$INFLUXDB_VERSION"

  ld="-s -w -X github.com/influxdata/telegraf/internal.Version=${TELEGRAF_VERSION#v}"
  GOFLAGS=-mod=mod ensure_built "$TELEGRAF_VERSION cgo=0 tags=$TELEGRAF_TAGS ldflags=$ld" "~1-2 min" "$CACHE" telegraf -- \
    -trimpath -tags "$TELEGRAF_TAGS" -ldflags "$ld" "github.com/influxdata/telegraf/cmd/telegraf@$TELEGRAF_VERSION"

  # The version variables make `kubectl version` and /version report v1.36.3 instead of v0.0.0-master.
  local v=k8s.io/component-base/version c=k8s.io/client-go/pkg/version minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  ld="-s -w -X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $c.gitVersion=$KUBE_VERSION -X $c.gitMajor=1 -X $c.gitMinor=$minor"
  local mod
  mod=$(cat "$KUBE_BUILD/go.mod" "$KUBE_BUILD/go.sum" | sha256sum | cut -c1-12)
  GOFLAGS="-mod=readonly -buildvcs=false" ensure_built "$KUBE_VERSION cgo=0 kube-build=$mod ldflags=$ld" "~5-7 min" "$KUBE_BUILD" \
    kube-apiserver kubectl -- -trimpath -ldflags "$ld" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl

  # etcd comes from Debian (the package may also enable a system service on 2379: we never use it).
  if ! command -v etcd >/dev/null 2>&1; then
    log "etcd not found on PATH"
    apt_install etcd-server
  fi
  local etcd
  etcd=$(readlink -f "$(command -v etcd)") || die "etcd missing even after installing Debian package etcd-server"
  [[ $(readlink "$BIN/etcd" 2>/dev/null) == "$etcd" ]] || ln -sfn "$etcd" "$BIN/etcd"
  local ev
  ev=$("$BIN/etcd" --version 2>/dev/null | awk '/etcd Version/ {print $3}')
  [[ $(cat "$BIN/etcd.version" 2>/dev/null) == "$ev debian" ]] || printf '%s debian\n' "$ev" >"$BIN/etcd.version"
  log "etcd $ev: $etcd (Debian etcd-server)"
}

# ---------------------------------------------------------------------------------------------------
# Settings, credentials, ports

load_state() {
  # shellcheck disable=SC1091
  [[ -f $STATE/settings ]] && . "$STATE/settings"
  # shellcheck disable=SC1091
  [[ -f $STATE/credentials ]] && . "$STATE/credentials"
  return 0
}

# ensure_credentials creates the passwords and the admin token once; they live as long as the data.
ensure_credentials() {
  local changed=0
  for var in INFLUX_ADMIN_PASSWORD INFLUX_WRITE_PASSWORD INFLUX_READ_PASSWORD KUBE_ADMIN_TOKEN; do
    if [[ -z ${!var:-} ]]; then
      printf -v "$var" '%s' "$(openssl rand -hex 24)"
      changed=1
    fi
  done
  if ((changed)) && [[ -d $STATE/influxdb/meta ]]; then
    die "InfluxDB data exists in $STATE/influxdb but its credentials are gone: run scripts/stack-down.sh --purge"
  fi
  {
    for var in INFLUX_ADMIN_PASSWORD INFLUX_WRITE_PASSWORD INFLUX_READ_PASSWORD KUBE_ADMIN_TOKEN; do
      printf '%s=%s\n' "$var" "${!var}"
    done
  } | write_if_changed "$STATE/credentials" >/dev/null
}

ASSIGNED=()
# assign_port VAR OWNER WHAT keeps VAR's recorded port while OWNER runs or the port is free, and
# picks a new random free port otherwise.
assign_port() {
  local var=$1 owner=$2 what=$3 cur=${!1:-}
  if [[ -n $cur ]] && { pid_of "$owner" >/dev/null || ! port_in_use "$cur"; }; then
    :
  else
    local new
    new=$(pick_port "${ASSIGNED[@]}")
    [[ -n $cur ]] && log "port $cur ($what) is taken by another process now; using $new"
    printf -v "$var" '%s' "$new"
  fi
  ASSIGNED+=("${!var}")
}

choose_settings() {
  assign_port PORT_ETCD_CLIENT etcd "etcd client"
  assign_port PORT_ETCD_PEER etcd "etcd peer"
  assign_port PORT_APISERVER kube-apiserver "kube-apiserver"
  assign_port PORT_INFLUXDB_HTTP influxd "InfluxDB HTTP"
  assign_port PORT_INFLUXDB_RPC influxd "InfluxDB RPC bind-address"
  # The simulator listens here later (make sim); once chosen the address stays, even while in use.
  if [[ -z ${PORT_SIM_KUBELET:-} ]]; then
    PORT_SIM_KUBELET=$(pick_port "${ASSIGNED[@]}")
  fi
  ASSIGNED+=("$PORT_SIM_KUBELET")

  # An explicit environment value wins, then what the stack used before, then the default.
  TELEGRAF_INTERVAL=${TELEGRAF_INTERVAL:-${STACK_TELEGRAF_INTERVAL:-10s}}
  SIM_NODES=${SIM_NODES:-${STACK_SIM_NODES:-3}}
  [[ $TELEGRAF_INTERVAL =~ ^[0-9]+(ms|s|m|h)$ ]] || die "TELEGRAF_INTERVAL=$TELEGRAF_INTERVAL: want a duration like 10s or 500ms"
  [[ $SIM_NODES =~ ^[1-9][0-9]*$ ]] || die "SIM_NODES=$SIM_NODES: want a positive integer"
  STACK_TELEGRAF_INTERVAL=$TELEGRAF_INTERVAL
  STACK_SIM_NODES=$SIM_NODES

  {
    echo "# Chosen by scripts/stack-up.sh; reused while the servers run or the ports stay free."
    for var in PORT_ETCD_CLIENT PORT_ETCD_PEER PORT_APISERVER PORT_INFLUXDB_HTTP PORT_INFLUXDB_RPC \
      PORT_SIM_KUBELET STACK_TELEGRAF_INTERVAL STACK_SIM_NODES; do
      printf '%s=%s\n' "$var" "${!var}"
    done
  } | write_if_changed "$STATE/settings" >/dev/null

  ETCD_URL=http://127.0.0.1:$PORT_ETCD_CLIENT
  APISERVER_URL=https://127.0.0.1:$PORT_APISERVER
  INFLUX_URL=http://127.0.0.1:$PORT_INFLUXDB_HTTP
  SIM_KUBELET_ADDR=127.0.0.1:$PORT_SIM_KUBELET
}

# ---------------------------------------------------------------------------------------------------
# Process handling

# decide NAME FINGERPRINT: returns 0 when NAME must be started (it is not running, or it runs with
# another configuration and was stopped here), 1 when the running server is reused.
decide() {
  local name=$1 fp=$2
  if pid_of "$name" >/dev/null; then
    if [[ $(cat "$RUN/$name.fingerprint" 2>/dev/null) == "$fp" ]]; then
      log "$name: running (pid $(pid_of "$name")), reused"
      return 1
    fi
    log "$name: configuration changed, restarting"
    stop_server "$name"
  fi
  return 0
}

# launch NAME FINGERPRINT [VAR=VALUE...] BINARY ARGS...: starts a server in its own session with a
# clean environment (no INFLUXDB_*/ETCD_*/KUBECONFIG/proxy variables from the caller's shell leak
# into the servers' config), appends to its log and records its pid.
launch() {
  local name=$1 fp=$2
  shift 2
  mkdir -p "$RUN" "$LOGS"
  printf '\n==== %s: started by stack-up.sh\n' "$(date -Is)" >>"$LOGS/$name.log"
  printf '%s\n' "$fp" >"$RUN/$name.fingerprint"
  # 9>&- : the servers must not inherit (and so hold) the state-dir lock.
  setsid env -i "PATH=$PATH" "HOME=$HOME" "LANG=C.UTF-8" "$@" </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
  printf '%s\n' "$!" >"$RUN/$name.pid"
  log "$name: started (pid $!), log $LOGS/$name.log"
}

# wait_for NAME TIMEOUT WHAT CMD...: polls CMD until it succeeds; fails with the server's log tail
# when the server exits or the time is up.
wait_for() {
  local name=$1 timeout=$2 what=$3 t0 deadline
  shift 3
  t0=$(now_ms)
  deadline=$((SECONDS + timeout))
  log "waiting for $name: $what (up to ${timeout}s)"
  while ! "$@" >/dev/null 2>&1; do
    if ! pid_of "$name" >/dev/null; then
      tail_log "$LOGS/$name.log"
      die "$name exited while starting (log above: $LOGS/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail_log "$LOGS/$name.log"
      die "$name not ready after ${timeout}s: $what (log above: $LOGS/$name.log)"
    fi
    sleep 0.2
  done
  log "$name: ready after $(elapsed "$t0")"
}

fingerprint() { { cat "$BIN/$1.version"; printf '%s\n' "${@:2}"; } | sha256sum | cut -c1-16; }

# ---------------------------------------------------------------------------------------------------
# etcd

etcd_args() {
  local peer=http://127.0.0.1:$PORT_ETCD_PEER
  ETCD_ARGS=(
    "$BIN/etcd" --name=podtype-stack --data-dir="$STATE/etcd/data"
    --listen-client-urls="$ETCD_URL" --advertise-client-urls="$ETCD_URL"
    --listen-peer-urls="$peer" --initial-advertise-peer-urls="$peer"
    --initial-cluster="podtype-stack=$peer" --initial-cluster-state=new
    --logger=zap --log-outputs=stderr
  )
}
etcd_healthy() { curl_local "$ETCD_URL/health" | grep -q '"health":"true"'; }

start_etcd() {
  etcd_args
  local fp
  fp=$(fingerprint etcd "${ETCD_ARGS[@]}")
  decide etcd "$fp" || return 0
  require_free_port "$PORT_ETCD_CLIENT" "etcd client"
  require_free_port "$PORT_ETCD_PEER" "etcd peer"
  mkdir -p "$STATE/etcd"
  launch etcd "$fp" "${ETCD_ARGS[@]}"
}

# ---------------------------------------------------------------------------------------------------
# kube-apiserver

ensure_pki() {
  mkdir -p "$PKI"
  if [[ ! -s $PKI/ca.crt || ! -s $PKI/ca.key ]]; then
    log "generating the stack's CA"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
      -subj "/CN=podtype-stack-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    rm -f "$PKI/apiserver.crt"
  fi
  if [[ ! -s $PKI/apiserver.crt || ! -s $PKI/apiserver.key ]]; then
    log "generating the kube-apiserver serving certificate (127.0.0.1, localhost)"
    openssl req -newkey rsa:2048 -nodes -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" \
      -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
      -CAcreateserial -out "$PKI/apiserver.crt" -extfile <(printf '%s\n' \
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1" \
        "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth") 2>/dev/null
    rm -f "$PKI/apiserver.csr"
  fi
  if [[ ! -s $PKI/sa.key || ! -s $PKI/sa.pub ]]; then
    log "generating the service-account signing key"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
  fi
}

# tokens_csv prints the static token file: the admin, then every user of scripts/stack/users.csv
# with the token it had before (or a new random one).
tokens_csv() {
  printf '%s,%s,%s,"%s"\n' "$KUBE_ADMIN_TOKEN" "$KUBE_ADMIN_USER" "$KUBE_ADMIN_USER" "system:masters"
  [[ -f $USERS_CSV ]] || return 0
  local line name rest uid groups token
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%#*}
    line=${line//[$'\t\r ']/}
    [[ -n $line ]] || continue
    name=${line%%,*}
    rest=
    [[ $line == *,* ]] && rest=${line#*,}
    uid=${rest%%,*}
    groups=
    [[ $rest == *,* ]] && groups=${rest#*,}
    groups=${groups//\"/}
    [[ $name =~ ^[a-zA-Z0-9:._@-]+$ ]] || die "$USERS_CSV: bad user name in line: $line"
    [[ $name != "$KUBE_ADMIN_USER" ]] || die "$USERS_CSV: $KUBE_ADMIN_USER is reserved for the admin"
    token=$(awk -F, -v u="$name" '$2 == u { print $1; exit }' "$TOKENS" 2>/dev/null || true)
    [[ -n $token ]] || token=$(openssl rand -hex 24)
    # No 4th column without groups: the apiserver would read "" as a group named "".
    if [[ -n $groups ]]; then
      printf '%s,%s,%s,"%s"\n' "$token" "$name" "${uid:-$name}" "$groups"
    else
      printf '%s,%s,%s\n' "$token" "$name" "${uid:-$name}"
    fi
  done <"$USERS_CSV"
}

apiserver_args() {
  APISERVER_ARGS=(
    "$BIN/kube-apiserver"
    --etcd-servers="$ETCD_URL"
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$PORT_APISERVER"
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key"
    --client-ca-file="$PKI/ca.crt"
    --cert-dir="$PKI/generated"
    --token-auth-file="$TOKENS"
    --authorization-mode=RBAC
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key"
    --service-cluster-ip-range="$SERVICE_CLUSTER_IP_RANGE"
    # The "kubernetes" Service endpoint would be 127.0.0.1, which Endpoints validation rejects as
    # loopback; there is no cluster network to reach it through anyway.
    --endpoint-reconciler-type=none
    --profiling=false
  )
}
apiserver_ready() {
  curl_local --cacert "$PKI/ca.crt" -K - "$APISERVER_URL/readyz" <<<"header = \"Authorization: Bearer $KUBE_ADMIN_TOKEN\"" |
    grep -qx ok
}

start_apiserver() {
  ensure_pki
  apiserver_args
  local tokens fp
  tokens=$(tokens_csv)
  fp=$(fingerprint kube-apiserver "${APISERVER_ARGS[@]}" "$tokens" "$(cat "$PKI/apiserver.crt" "$PKI/sa.pub")")
  decide kube-apiserver "$fp" || return 0
  require_free_port "$PORT_APISERVER" "kube-apiserver"
  printf '%s\n' "$tokens" | write_if_changed "$TOKENS" >/dev/null
  launch kube-apiserver "$fp" "${APISERVER_ARGS[@]}"
}

write_kubeconfig() {
  local ca
  ca=$(base64 -w0 <"$PKI/ca.crt")
  write_if_changed "$KUBECONFIG_FILE" >/dev/null <<EOF
apiVersion: v1
kind: Config
clusters:
- name: podtype-stack
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $ca
users:
- name: $KUBE_ADMIN_USER
  user:
    token: $KUBE_ADMIN_TOKEN
contexts:
- name: podtype-stack
  context:
    cluster: podtype-stack
    user: $KUBE_ADMIN_USER
current-context: podtype-stack
EOF
  local out
  if ! out=$("$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" get ns --request-timeout=10s 2>&1); then
    printf '%s\n' "$out" >&2
    die "kubectl --kubeconfig $KUBECONFIG_FILE get ns failed"
  fi
  grep -q '^default ' <<<"$out" || die "kubectl get ns lists no default namespace: $out"
  log "kubectl --kubeconfig .stack/kubeconfig get ns: ok"
}

# ---------------------------------------------------------------------------------------------------
# InfluxDB

influx_conf() {
  local d=$STATE/influxdb
  cat <<EOF
# Generated by scripts/stack-up.sh.
reporting-disabled = true
# RPC service for backup/restore; its default :8088 would clash with other local InfluxDBs.
bind-address = "127.0.0.1:$PORT_INFLUXDB_RPC"

[meta]
  dir = "$d/meta"

[data]
  dir = "$d/data"
  wal-dir = "$d/wal"
  query-log-enabled = false

[monitor]
  # No _internal database: nothing but Telegraf's data in the stack.
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:$PORT_INFLUXDB_HTTP"
  auth-enabled = true
  flux-enabled = true
  log-enabled = true

[logging]
  level = "info"
EOF
}
influx_ping() { [[ $(curl_local -o /dev/null -w '%{http_code}' "$INFLUX_URL/ping") == 204 ]]; }

start_influxd() {
  local conf fp
  conf=$(influx_conf)
  fp=$(fingerprint influxd "$conf")
  decide influxd "$fp" || return 0
  require_free_port "$PORT_INFLUXDB_HTTP" "InfluxDB HTTP"
  require_free_port "$PORT_INFLUXDB_RPC" "InfluxDB RPC"
  mkdir -p "$STATE/influxdb"
  printf '%s\n' "$conf" >"$STATE/influxdb/influxdb.conf"
  launch influxd "$fp" "$BIN/influxd" run -config "$STATE/influxdb/influxdb.conf"
}

# influxql USER PASSWORD QUERY runs an InfluxQL statement; fails on an HTTP or statement error.
# Credentials go through curl's config on stdin, never on a command line.
influxql() {
  local out
  out=$(curl_local -XPOST "$INFLUX_URL/query" --data-urlencode "q=$3" -w '\n%{http_code}' -K - \
    <<<"user = \"$1:$2\"") || return 1
  if [[ ${out##*$'\n'} != 200 || $out == *'"error"'* ]]; then
    printf '%s\n' "${out%$'\n'*}" >&2
    return 1
  fi
  printf '%s\n' "${out%$'\n'*}"
}

setup_influxdb() {
  local a=$INFLUX_ADMIN_USER ap=$INFLUX_ADMIN_PASSWORD users
  if ! users=$(influxql "$a" "$ap" "SHOW USERS" 2>/dev/null); then
    # 1.8 allows exactly one unauthenticated statement on an empty user table: the first admin.
    log "influxd: creating admin user $a"
    influxql "" "" "CREATE USER \"$a\" WITH PASSWORD '$ap' WITH ALL PRIVILEGES" >/dev/null ||
      die "could not create the InfluxDB admin $a (users exist with other credentials? run stack-down.sh --purge)"
    users=$(influxql "$a" "$ap" "SHOW USERS")
  fi
  influxql "$a" "$ap" "CREATE DATABASE \"$INFLUX_DB\"" >/dev/null || die "CREATE DATABASE $INFLUX_DB failed"
  local u p
  for u in "$INFLUX_WRITE_USER" "$INFLUX_READ_USER"; do
    if [[ $users != *"[\"$u\","* ]]; then
      p=$INFLUX_WRITE_PASSWORD
      [[ $u == "$INFLUX_READ_USER" ]] && p=$INFLUX_READ_PASSWORD
      log "influxd: creating user $u"
      influxql "$a" "$ap" "CREATE USER \"$u\" WITH PASSWORD '$p'" >/dev/null || die "CREATE USER $u failed"
    fi
  done
  # READ is enough for Flux in 1.8: from() checks ReadPrivilege on the database (verified below).
  influxql "$a" "$ap" "GRANT WRITE ON \"$INFLUX_DB\" TO \"$INFLUX_WRITE_USER\"" >/dev/null || die "GRANT WRITE failed"
  influxql "$a" "$ap" "GRANT READ ON \"$INFLUX_DB\" TO \"$INFLUX_READ_USER\"" >/dev/null || die "GRANT READ failed"
}

# verify_flux checks that the read user (what the services use) can run Flux over /api/v2/query.
verify_flux() {
  local out code
  out=$(curl_local -XPOST "$INFLUX_URL/api/v2/query" -H 'Content-Type: application/vnd.flux' \
    -H 'Accept: application/csv' -w '\n%{http_code}' -K - \
    --data "from(bucket: \"$INFLUX_DB/autogen\") |> range(start: -1m) |> limit(n: 1)" \
    <<<"header = \"Authorization: Token $INFLUX_READ_USER:$INFLUX_READ_PASSWORD\"") ||
    die "Flux query to $INFLUX_URL/api/v2/query failed"
  code=${out##*$'\n'}
  if [[ $code != 200 || $out == *'"error"'* || $out == *',error,'* ]]; then
    printf '%s\n' "${out%$'\n'*}" >&2
    die "Flux query as $INFLUX_READ_USER failed (HTTP $code): is flux-enabled on and READ granted?"
  fi
  log "influxd: Flux query as read user $INFLUX_READ_USER: ok"
}

# ---------------------------------------------------------------------------------------------------
# Telegraf

telegraf_conf() {
  local n
  cat <<EOF
# Generated by scripts/stack-up.sh: Telegraf as the k3s DaemonSet runs it, one kubelet per
# simulated node, all served by the simulator at $SIM_KUBELET_ADDR (make sim).
[agent]
  interval = "$TELEGRAF_INTERVAL"
  flush_interval = "$TELEGRAF_INTERVAL"
  round_interval = true
  collection_jitter = "0s"
  flush_jitter = "0s"
  omit_hostname = true
  skip_processors_after_aggregators = true
EOF
  for ((n = 1; n <= SIM_NODES; n++)); do
    cat <<EOF

[[inputs.kubernetes]]
  url = "http://$SIM_KUBELET_ADDR/nodes/sim-node-$n"
  bearer_token = "$STATE/telegraf/kubelet-token"
  label_include = ["app.kubernetes.io/name", "app"]
  # The plugin's default label_exclude is ["*"], which would drop every label despite label_include.
  label_exclude = []
EOF
  done
  cat <<EOF

[[outputs.influxdb]]
  urls = ["$INFLUX_URL"]
  database = "$INFLUX_DB"
  skip_database_creation = true
  username = "$INFLUX_WRITE_USER"
  # From Telegraf's environment (set by stack-up.sh), so no secret sits in this file.
  password = "\${STACK_INFLUXDB_WRITE_PASSWORD}"
EOF
}
telegraf_started() {
  grep -q 'Starting Telegraf' <(sed -n "$TELEGRAF_LOG_FROM,\$p" "$LOGS/telegraf.log") &&
    sleep 1 && pid_of telegraf >/dev/null
}

start_telegraf() {
  local conf fp
  conf=$(telegraf_conf)
  fp=$(fingerprint telegraf "$conf")
  TELEGRAF_LOG_FROM=0
  decide telegraf "$fp" || return 0
  mkdir -p "$STATE/telegraf" "$LOGS"
  [[ -s $STATE/telegraf/kubelet-token ]] || openssl rand -hex 24 >"$STATE/telegraf/kubelet-token"
  printf '%s\n' "$conf" >"$STATE/telegraf/telegraf.conf"
  TELEGRAF_LOG_FROM=1
  [[ -f $LOGS/telegraf.log ]] && TELEGRAF_LOG_FROM=$(($(wc -l <"$LOGS/telegraf.log") + 1))
  launch telegraf "$fp" "STACK_INFLUXDB_WRITE_PASSWORD=$INFLUX_WRITE_PASSWORD" \
    "$BIN/telegraf" --strict-env-handling --config "$STATE/telegraf/telegraf.conf"
}

# ---------------------------------------------------------------------------------------------------
# .stack/env and summary

write_env() {
  {
    echo "# Generated by scripts/stack-up.sh: the local stack's endpoints and credentials."
    echo "# Use: . .stack/env   (INFLUXDB_USERNAME/PASSWORD is the read-only user the services use)"
    local kv
    for kv in "KUBECONFIG=$KUBECONFIG_FILE" "INFLUXDB_URL=$INFLUX_URL" "INFLUXDB_DATABASE=$INFLUX_DB" \
      "INFLUXDB_USERNAME=$INFLUX_READ_USER" "INFLUXDB_PASSWORD=$INFLUX_READ_PASSWORD" \
      "TELEGRAF_INTERVAL=$TELEGRAF_INTERVAL" "STACK_BIN=$BIN" "SIM_KUBELET_ADDR=$SIM_KUBELET_ADDR" \
      "SIM_NODES=$SIM_NODES" \
      "STACK_INFLUXDB_ADMIN_USERNAME=$INFLUX_ADMIN_USER" "STACK_INFLUXDB_ADMIN_PASSWORD=$INFLUX_ADMIN_PASSWORD" \
      "STACK_INFLUXDB_WRITE_USERNAME=$INFLUX_WRITE_USER" "STACK_INFLUXDB_WRITE_PASSWORD=$INFLUX_WRITE_PASSWORD" \
      "STACK_APISERVER_URL=$APISERVER_URL" "STACK_TOKEN_FILE=$TOKENS"; do
      printf 'export %s=%s\n' "${kv%%=*}" "$(shq "${kv#*=}")"
    done
  } | write_if_changed "$STATE/env" >/dev/null
}

check() {
  [[ -f $STATE/env && -f $STATE/settings && -f $STATE/credentials ]] || return 1
  load_state
  ETCD_URL=http://127.0.0.1:$PORT_ETCD_CLIENT
  APISERVER_URL=https://127.0.0.1:$PORT_APISERVER
  INFLUX_URL=http://127.0.0.1:$PORT_INFLUXDB_HTTP
  local s
  for s in "${SERVERS[@]}"; do pid_of "$s" >/dev/null || return 1; done
  etcd_healthy && apiserver_ready && influx_ping
}

main() {
  if ((check_only)); then
    if check; then echo "stack is up"; exit 0; fi
    echo "stack is not (completely) up"
    exit 1
  fi
  local t_all t_servers
  t_all=$(now_ms)
  lock
  mkdir -p "$CACHE/logs" "$RUN" "$LOGS"
  ensure_cmd curl curl
  ensure_cmd openssl openssl
  build_all

  t_servers=$(now_ms)
  load_state
  ensure_credentials
  choose_settings

  # Launch what can start in parallel, then wait in dependency order.
  start_etcd
  start_influxd
  wait_for etcd 60 "$ETCD_URL/health" etcd_healthy
  start_apiserver
  wait_for influxd 90 "$INFLUX_URL/ping" influx_ping
  setup_influxdb
  verify_flux
  start_telegraf
  wait_for kube-apiserver 120 "$APISERVER_URL/readyz" apiserver_ready
  write_kubeconfig
  if ((TELEGRAF_LOG_FROM > 0)); then
    wait_for telegraf 30 "'Starting Telegraf' in its log" telegraf_started
  fi
  write_env

  cat >&2 <<EOF

stack is up (servers $(elapsed "$t_servers"), total $(elapsed "$t_all"))
  etcd            $ETCD_URL            data $STATE/etcd
  kube-apiserver  $APISERVER_URL          kubeconfig .stack/kubeconfig (admin, token auth, TLS verified)
  InfluxDB 1.8    $INFLUX_URL            database $INFLUX_DB; users $INFLUX_ADMIN_USER (admin), $INFLUX_WRITE_USER (write), $INFLUX_READ_USER (read)
  Telegraf        every $TELEGRAF_INTERVAL, scrapes http://$SIM_KUBELET_ADDR/nodes/sim-node-{1..$SIM_NODES} (start the simulator: make sim)
  binaries        $BIN
  logs            $LOGS
Use it:  . .stack/env    (then: \$STACK_BIN/kubectl get ns; go test -tags integration ./...)
Stop:    make stack-down   (ARGS=--purge also deletes the data)
EOF
}

main
