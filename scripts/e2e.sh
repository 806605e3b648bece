#!/usr/bin/env bash
# End-to-end test of the services' RBAC (make e2e, part of make test): both services run against the
# local stack with the tokens of exactly their ServiceAccounts, podtype:metrics-collector and
# podtype:pod-watcher (static-token users system:serviceaccount:podtype:<name> with the groups a real
# token carries, see scripts/stack/users.csv), bound only to the RBAC of kubernetes/base. It proves the
# roles are enough; kubernetes/verify-rbac.sh proves with `kubectl auth can-i` that they are not more.
#
#   1. the stack (started if needed, Telegraf every E2E_INTERVAL), the binaries, the RBAC applied;
#   2. a simulated cluster of training pods in a new namespace; Telegraf writes their metrics;
#   3. metrics-collector `train` as its ServiceAccount: trains on that data and serves /model;
#   4. pod-watcher as its ServiceAccount, leader election on (it creates the Lease
#      podtype/podtype-pod-watcher), pulls the model from the collector over HTTP; new pods arrive in
#      another new namespace;
#   5. asserts: /model answers 200, the watcher's /readyz 200 with the collector's model, it holds the
#      Lease (and releases it on SIGTERM), every new pod gets podtype.io/type and a Classified Event,
#      and neither service logged a forbidden (or unauthorized) error.
# Whether the types are right is not checked here (the integration tests measure accuracy).
#
# Everything it starts it stops again (the stack too, when it started it; KEEP_STACK=1 keeps it).
# Logs: .stack/e2e/. Knobs (env): E2E_INTERVAL (Telegraf interval, 2s), E2E_TRAIN_DATA (seconds of
# training data, 60s), E2E_TYPES (mysql,redis,nginx), E2E_TIMEOUT (limit of each wait, 120s).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
DIE_PREFIX=e2e

interval=${E2E_INTERVAL:-2s}
train_data=$(seconds "${E2E_TRAIN_DATA:-60s}")
types=${E2E_TYPES:-mysql,redis,nginx}
timeout=$(seconds "${E2E_TIMEOUT:-120s}")
train_pods=2  # per type: one trains, one validates
live_pods=1   # per type
samples=6     # window: 6 x interval
sa_ns=podtype # where the ServiceAccounts live (kubernetes/base)
lease=podtype-pod-watcher
run=$(date -u +%m%d-%H%M%S)-$(openssl rand -hex 2)
ns_train=podtype-e2e-$run-train # new names every run: deleted namespaces stay Terminating here
ns_live=podtype-e2e-$run-live
identity=e2e-$run
logs=$STATE/e2e
started=$SECONDS

step() { printf 'e2e [%3ds] %s\n' $((SECONDS - started)) "$*"; }

tmp=
passed=0
sims_started=
run_logs=() # logs of the processes this run started, shown on failure
cleanup() {
  local rc=$?
  stop_bg 60
  if ((rc != 0)); then
    local f
    for f in "${run_logs[@]}"; do
      if [[ $f == */sim-* ]]; then tail_log "$f" 15; fi
    done
    for f in "${run_logs[@]}"; do
      if [[ $f != */sim-* ]]; then tail_log "$f" 40; fi
    done
    local how=FAILED
    if ((rc == 130)); then how=interrupted; fi
    log "e2e: $how after $((SECONDS - started))s; logs in $logs/${sims_started:+, namespaces $ns_train and $ns_live kept}"
  fi
  if [[ -n $tmp ]]; then rm -rf "$tmp"; fi
  stop_stack_if_started >/dev/null 2>&1
  if ((passed)); then step "PASSED in $((SECONDS - started))s"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Kubeconfigs with tokens, the InfluxDB password and the model: files of mode 0600 in a private
# directory that goes when the script ends. Tokens are never printed.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/podtype-e2e.XXXXXX")

step "local stack (Telegraf every $interval; a first run builds the servers, ~5 min)"
if ! stack_up "$interval" >"$tmp/stack-up.log" 2>&1; then
  cat "$tmp/stack-up.log" >&2
  die "scripts/stack-up.sh failed (output above)"
fi
if ((STACK_STARTED)); then step "  started the stack; it stops again at the end (KEEP_STACK=1 keeps it)"; fi
if grep -q '^telegraf: configuration changed' "$tmp/stack-up.log"; then
  step "  restarted the stack's Telegraf to collect every $interval (the interval sticks, see scripts/stack-up.sh)"
fi
# shellcheck disable=SC1091
. .stack/env
kubectl() { "$STACK_BIN/kubectl" --kubeconfig "$KUBECONFIG" "$@"; } # the admin: sets up and observes
require_sim_addr_free
rm -rf "$logs"
mkdir -p "$logs"

step "building metrics-collector, pod-watcher, cluster-sim"
build_services

step "applying the namespace $sa_ns and the services' RBAC (kubernetes/base)"
apply_rbac >/dev/null
# A released Lease (or one a killed run left) goes, so that the watcher has to create it: the Role's
# create verb is exercised too, not only get/update. A Lease someone else holds stays.
holder=$(kubectl get lease -n "$sa_ns" "$lease" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
if [[ -z $holder || $holder == e2e-* ]]; then
  kubectl delete lease -n "$sa_ns" "$lease" --ignore-not-found >/dev/null
else
  step "  Lease $sa_ns/$lease is held by $holder: the watcher waits for it"
fi

# One kubeconfig per ServiceAccount: the admin kubeconfig's server and CA, the user's static token.
ca=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
[[ -n $ca ]] || die "$KUBECONFIG has no certificate-authority-data"
sa_kubeconfig() { # NAME: writes $tmp/NAME.kubeconfig and checks who the API server says it is
  local name=$1 user=system:serviceaccount:$sa_ns:$1 token who
  token=$(awk -F, -v u="$user" '$2 == u { print $1; exit }' "$STACK_TOKEN_FILE")
  [[ -n $token ]] || die "no token for $user in $STACK_TOKEN_FILE: is it in scripts/stack/users.csv? (make stack-up adds it)"
  (
    umask 077
    cat >"$tmp/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: podtype-stack
  cluster:
    server: $STACK_APISERVER_URL
    certificate-authority-data: $ca
users:
- name: $name
  user:
    token: $token
contexts:
- name: $name
  context:
    cluster: podtype-stack
    user: $name
current-context: $name
EOF
  )
  who=$("$STACK_BIN/kubectl" --kubeconfig "$tmp/$name.kubeconfig" auth whoami -o jsonpath='{.status.userInfo.username} {.status.userInfo.groups}')
  [[ $who == "$user "* ]] || die "$tmp/$name.kubeconfig authenticates as '$who', want $user"
  step "  $name: kubeconfig with the token of $user"
}
sa_kubeconfig metrics-collector
sa_kubeconfig pod-watcher
(umask 077 && printf '%s' "$INFLUXDB_PASSWORD" >"$tmp/influxdb-password")

# The services get a clean environment (nothing from this shell, no admin KUBECONFIG): InfluxDB's
# read user, as in kubernetes/base, with the password from a file like the Secret there.
base_env=(PATH="$PATH" HOME="$HOME" INFLUXDB_URL="$INFLUXDB_URL" INFLUXDB_DATABASE="$INFLUXDB_DATABASE"
  INFLUXDB_USERNAME="$INFLUXDB_USERNAME" INFLUXDB_PASSWORD_FILE="$tmp/influxdb-password" LOG_LEVEL=info)
sim_port=${SIM_KUBELET_ADDR##*:}
collector_port=$(pick_port "$sim_port")
watcher_port=$(pick_port "$sim_port" "$collector_port")
collector_url=http://127.0.0.1:$collector_port
watcher_url=http://127.0.0.1:$watcher_port

# http_code URL prints the HTTP status of GET URL, 000 when nothing answers.
http_code() { curl_local -o /dev/null -w '%{http_code}' "$1" 2>/dev/null || true; }

# wait_until WHAT PID CMD...: polls CMD every second until it succeeds; fails when process PID
# (a service or the simulator) exits or after E2E_TIMEOUT.
wait_until() {
  local what=$1 pid=$2 deadline=$((SECONDS + timeout))
  shift 2
  until "$@"; do
    alive "$pid" || die "$what: the process it needs (pid $pid) exited"
    ((SECONDS < deadline)) || die "$what: not after ${timeout}s"
    sleep 1
  done
}
pod_count() { kubectl get pods -n "$1" --no-headers 2>/dev/null | wc -l; }
registered() { [[ $(pod_count "$1") -ge $2 ]]; }

n_types=$(tr ',' '\n' <<<"$types" | grep -c .)
step "training pods: $train_pods each of $types in namespace $ns_train"
sims_started=1
run_logs+=("$logs/sim-train.log")
start_sim "$logs/sim-train.log" "$ns_train" 51 "$train_pods" "$types"
sim_train=$BG_PID
wait_until "the simulator registering $((n_types * train_pods)) pods" "$sim_train" registered "$ns_train" $((n_types * train_pods))
data_from=$SECONDS

# The watcher starts now, so its informers, leader election and first model requests (503 until
# the collector has trained) overlap with the data collection.
step "pod-watcher as system:serviceaccount:$sa_ns:pod-watcher on $watcher_url (namespace $ns_live, leader election on)"
run_logs+=("$logs/pod-watcher.log")
start_bg "$logs/pod-watcher.log" env -i "${base_env[@]}" KUBECONFIG="$tmp/pod-watcher.kubeconfig" \
  NAMESPACES="$ns_live" MODEL_URL="$collector_url/model" MODEL_REFRESH=5s POLL_INTERVAL="$interval" \
  CLASSIFY_TIMEOUT=5m LEADER_ELECT=true LEASE_NAME="$lease" LEASE_NAMESPACE="$sa_ns" POD_NAME="$identity" \
  LISTEN_ADDR="127.0.0.1:$watcher_port" LOG_FORMAT=text bin/pod-watcher
watcher=$BG_PID

step "collecting ${train_data}s of training data (Telegraf -> InfluxDB)"
while ((SECONDS - data_from < train_data)); do
  alive "$sim_train" || die "the training simulator exited"
  alive "$watcher" || die "pod-watcher exited"
  sleep 1
  if (((SECONDS - data_from) % 20 == 0)); then step "  $((SECONDS - data_from))s / ${train_data}s"; fi
done

step "metrics-collector train as system:serviceaccount:$sa_ns:metrics-collector, serving $collector_url/model"
run_logs+=("$logs/metrics-collector.log")
start_bg "$logs/metrics-collector.log" env -i "${base_env[@]}" KUBECONFIG="$tmp/metrics-collector.kubeconfig" \
  NAMESPACES="$ns_train" CLASSES="$types" WINDOW_STEP="$interval" WINDOW_SAMPLES="$samples" \
  FETCH_WINDOW="$((SECONDS - data_from + 30))s" TRAINING_ITERATIONS=1 CLASSIFIER_TREES=20 FOREST_TREES=50 \
  TRAIN_INTERVAL=24h MODEL_PATH="$tmp/model.json.gz" REPORT_DIR="$tmp/reports" \
  HTTP_ADDR="127.0.0.1:$collector_port" bin/metrics-collector train
collector=$BG_PID
model_ok() { [[ $(http_code "$collector_url/model") == 200 ]]; }
wait_until "the collector's /model answering 200" "$collector" model_ok
version=$(curl_local -o /dev/null -D - "$collector_url/model" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-model-version" { print $2 }')
[[ -n $version ]] || die "the collector's /model has no X-Model-Version header"
step "  /model: 200, bundle $version"

step "the training pods go; new pods: $live_pods each of $types in namespace $ns_live"
stop_pids 60 "$sim_train"
run_logs+=("$logs/sim-live.log")
start_sim "$logs/sim-live.log" "$ns_live" 52 "$live_pods" "$types"
sim_live=$BG_PID
want=$((n_types * live_pods))
wait_until "the simulator registering $want pods" "$sim_live" registered "$ns_live" "$want"

watcher_ready() { [[ $(http_code "$watcher_url/readyz") == 200 ]]; }
wait_until "the watcher's /readyz answering 200" "$watcher" watcher_ready
metric() { curl_local "$watcher_url/metrics" 2>/dev/null | awk -v m="$1" '$1 == m { print $2 }'; }
[[ $(metric "podwatcher_model_info{version=\"$version\"}") == 1 ]] ||
  die "the watcher's /metrics do not show podwatcher_model_info{version=\"$version\"} 1: not the collector's model"
step "  pod-watcher /readyz: 200, model $version from the collector"
leading() { [[ $(kubectl get lease -n "$sa_ns" "$lease" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null) == "$identity" ]]; }
wait_until "the watcher holding Lease $sa_ns/$lease" "$watcher" leading
step "  Lease $sa_ns/$lease held by $identity"

# classified succeeds when every pod in ns_live has a podtype.io/type annotation and a Classified
# Event; every 10 s it prints how far it is.
classified() {
  local pods typed events
  pods=$(kubectl get pods -n "$ns_live" -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.annotations.podtype\.io/type}{"\n"}{end}')
  typed=$(awk 'NF == 2' <<<"$pods" | wc -l)
  events=$(kubectl get events -n "$ns_live" --field-selector reason=Classified,involvedObject.kind=Pod \
    -o jsonpath='{range .items[*]}{.involvedObject.name}{"\n"}{end}' | sort -u | grep -cxF -f <(awk '{print $1}' <<<"$pods") || true)
  if ((SECONDS - last_report >= 10)); then
    step "  $typed of $want pods annotated, $events with a Classified Event"
    last_report=$SECONDS
  fi
  ((typed == want && events == want))
}
last_report=$SECONDS
wait_until "every new pod annotated and with a Classified Event" "$watcher" classified
kubectl get pods -n "$ns_live" -o custom-columns='POD:.metadata.name,TYPE:.metadata.annotations.podtype\.io/type,CONFIDENCE:.metadata.annotations.podtype\.io/confidence,MODEL:.metadata.annotations.podtype\.io/model-version' |
  sed 's/^/  /'

step "stopping the services and the simulator"
stop_pids 30 "$watcher" "$collector"
holder=$(kubectl get lease -n "$sa_ns" "$lease" -o jsonpath='{.spec.holderIdentity}')
[[ $holder != "$identity" ]] || die "pod-watcher did not release Lease $sa_ns/$lease on SIGTERM"
stop_bg 60

bad=0
for svc in metrics-collector pod-watcher; do
  if grep -iE 'forbidden|unauthorized' "$logs/$svc.log" >"$tmp/denied"; then
    log "e2e: $svc was denied something its RBAC should allow:"
    head -n 10 "$tmp/denied" | cut -c1-400 | sed 's/^/  | /' >&2
    bad=1
  fi
done
((bad == 0)) || die "permission errors in the service logs (above; full logs in $logs/)"
step "no forbidden/unauthorized errors in either service's log"

kubectl delete namespace "$ns_train" "$ns_live" --wait=false >/dev/null
passed=1
