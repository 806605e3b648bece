#!/usr/bin/env bash
# make demo: the whole loop on this machine, with real servers and a simulated cluster.
#   1. the local stack (InfluxDB, etcd, kube-apiserver, Telegraf) at a short Telegraf interval;
#   2. a simulated cluster of training pods (known types + faults) whose metrics flow through Telegraf;
#   3. metrics-collector trains the classifier and the per-type forests: confusion matrix, reports/;
#   4. the training pods go, NEW pods arrive (including a type the model never saw) and pod-watcher
#      classifies each from its first window and scores it; a live table shows what it decided.
# Everything it starts it stops again; the stack too, when the demo started it (KEEP_STACK=1 keeps it).
#
# Knobs (env): DEMO_INTERVAL (2s), DEMO_TRAIN_DATA (4m of training data), DEMO_WATCH (3m of watching),
# DEMO_PODS_PER_TYPE (6), DEMO_KNOWN (the types the model learns), DEMO_UNKNOWN (a type it does not).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

interval=${DEMO_INTERVAL:-2s}
train_data=${DEMO_TRAIN_DATA:-4m}
watch_for=${DEMO_WATCH:-3m}
per_type=${DEMO_PODS_PER_TYPE:-6}
known=${DEMO_KNOWN:-mysql,postgres,redis,memcached,nginx,httpd,mongo}
unknown=${DEMO_UNKNOWN:-rabbitmq}
ns=demo
work=.stack/demo
mkdir -p "$work" reports bin

DIE_PREFIX=demo
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

cleanup() {
  local rc=$?
  stop_bg
  stop_stack_if_started >/dev/null 2>&1
  exit "$rc"
}
trap cleanup EXIT INT TERM

say "1/4 local stack (Telegraf every $interval; first run builds the servers, ~5 min)"
stack_up "$interval"
# shellcheck disable=SC1091
. .stack/env
kubectl=$STACK_BIN/kubectl
require_sim_addr_free

say "building metrics-collector, pod-watcher, cluster-sim"
build_services

# The stack's Telegraf scrapes the nodes sim-node-1..N at SIM_KUBELET_ADDR, so the simulator serves
# exactly those; a fault now and then gives the forests something to find.
run_sim() { # seed, pods per type, types, log, extra flags...
  local seed=$1 n=$2 types=$3 log=$4
  shift 4
  start_sim "$log" "$ns" "$seed" "$n" "$types" --labels-file "$work/faults.jsonl" \
    --day-length 20m --log-level warn "$@"
}

say "2/4 training pods: $per_type each of $known, $train_data of data (faults injected with ground truth)"
: >"$work/faults.jsonl"
run_sim 11 "$per_type" "$known" "$work/sim-train.log" --fault-rate 2 --fault-min-duration 40s --fault-max-duration 90s
train_pid=$BG_PID
total=$(seconds "$train_data")
for ((waited = 0; waited < total; waited += 30)); do
  alive "$train_pid" || { echo "simulator died:" >&2; tail -n 20 "$work/sim-train.log" >&2; exit 1; }
  pods=$("$kubectl" get pods -n "$ns" --no-headers 2>/dev/null | wc -l)
  printf '  %3ds / %ds   %s pods running, %s faults so far\n' "$waited" "$total" "$pods" "$(wc -l <"$work/faults.jsonl")"
  sleep 30
done

say "3/4 training (split by pod: every number below is on pods the model never saw)"
NAMESPACES=$ns CLASSES=$known WINDOW_STEP=$interval WINDOW_SAMPLES=${DEMO_WINDOW_SAMPLES:-12} \
  FETCH_WINDOW=$((total / 60 + 2))m FAULT_LABELS_FILE=$work/faults.jsonl \
  MODEL_PATH=reports/model.json.gz REPORT_DIR=reports LOG_LEVEL=warn \
  bin/metrics-collector train

say "4/4 new pods: the training pods go, new ones arrive (incl. '$unknown', a type the model never saw)"
stop_pids 60 "$train_pid"
run_sim 97 2 "$known,$unknown" "$work/sim-live.log" --churn-rate 4 --fault-rate 3 --fault-min-duration 60s --fault-max-duration 90s
watcher_port=$(pick_port)
start_bg "$work/pod-watcher.log" env NAMESPACES="$ns" MODEL_PATH=reports/model.json.gz POLL_INTERVAL="$interval" \
  LEADER_ELECT=false LISTEN_ADDR="127.0.0.1:$watcher_port" LOG_FORMAT=text LOG_LEVEL=info bin/pod-watcher

cols='POD:.metadata.name,TRUE TYPE:.metadata.annotations.cluster-sim\.podtype\.io/type'
cols+=',CLASSIFIED AS:.metadata.annotations.podtype\.io/type,CONFIDENCE:.metadata.annotations.podtype\.io/confidence'
cols+=',ANOMALY:.metadata.annotations.podtype\.io/anomaly,SCORE:.metadata.annotations.podtype\.io/anomaly-score'
end=$((SECONDS + $(seconds "$watch_for")))
while ((SECONDS < end)); do
  sleep 10
  clear 2>/dev/null || true
  printf 'podtype demo: live pods in namespace %s (model %s)   %ds left   metrics: http://127.0.0.1:%s/metrics\n\n' \
    "$ns" "$(grep -o '"version":"[^"]*"' -m1 <(gzip -dc reports/model.json.gz) | cut -d'"' -f4)" $((end - SECONDS)) "$watcher_port"
  "$kubectl" get pods -n "$ns" --sort-by=.metadata.creationTimestamp -o custom-columns="$cols" | head -n 40
  printf '\nrecent events:\n'
  "$kubectl" get events -n "$ns" --field-selector involvedObject.kind=Pod --sort-by=.lastTimestamp \
    -o custom-columns='REASON:.reason,POD:.involvedObject.name,MESSAGE:.message' 2>/dev/null |
    grep -E 'Classified|Anomaly|Timeout' | tail -n 8 | cut -c1-160 || true
done

say "summary"
"$kubectl" get pods -n "$ns" -o custom-columns="$cols" --no-headers |
  awk '$3 != "<none>" { n++; if ($2 == $3 || ($3 == "unknown" && $2 == "'"$unknown"'")) ok++ }
       END { printf "classified %d pods, %d as their true type (unknown for the unseen type counts as right)\n", n, ok }'
printf 'report: %s/reports/report.html   model: reports/model.json.gz   logs: %s/\n' "$PWD" "$work"
