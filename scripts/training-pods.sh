#!/usr/bin/env bash
# Spins up labelled training pods of every type on a real cluster, each with its own load generator,
# so Telegraf records realistic behaviour for the metrics-collector to learn from.
#
# Usage: scripts/training-pods.sh [--per-type N] [--types a,b,..] [--namespace NS] [--wait]
#        scripts/training-pods.sh --delete [--keep-namespace] [--namespace NS]
#        add --dry-run to print the manifests (or, with --delete, the commands) instead of applying
#
# Per type and instance i (0..N-1): Deployment + Service <type>-<i> (the server; pod label
# app.kubernetes.io/name=<type>) and Deployment <type>-<i>-load (the load generator; label
# app.kubernetes.io/name=loadgen, so it is never taken for the type it drives). Everything carries
# app.kubernetes.io/part-of=podtype-training. Load intensity varies with i, so the model sees a range.
# Idempotent: applying again converges to exactly N per type (extra instances are deleted).
#
# Types: mysql (mysqlslap), postgres (pgbench), redis (redis-benchmark), memcached (busybox nc loop),
# nginx and httpd (ab), mongo (mongosh loop), rabbitmq (perf-test). Images can be overridden with
# TRAINING_IMAGE_<TYPE>, e.g. TRAINING_IMAGE_MYSQL=registry.local/mysql:8.4 (air-gapped clusters);
# the generators' own images with TRAINING_IMAGE_BUSYBOX and TRAINING_IMAGE_PERFTEST.
# Environment: KUBECTL (kubectl binary), KUBECONFIG.

# The load generators' scripts are single-quoted on purpose: they expand in the container, not here.
# shellcheck disable=SC2016
set -euo pipefail

all_types=(mysql postgres redis memcached nginx httpd mongo rabbitmq)
per_type=2
types_csv=$(IFS=,; echo "${all_types[*]}")
ns=podtype-training
action=apply
dry_run=0
wait_ready=0
keep_ns=0
kubectl=${KUBECTL:-kubectl}
part_of=podtype-training

usage() { sed -n '2,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "training-pods: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --per-type) per_type=${2:-}; shift 2 || die "--per-type needs a value" ;;
    --per-type=*) per_type=${1#*=}; shift ;;
    --types) types_csv=${2:-}; shift 2 || die "--types needs a value" ;;
    --types=*) types_csv=${1#*=}; shift ;;
    --namespace|-n) ns=${2:-}; shift 2 || die "--namespace needs a value" ;;
    --namespace=*) ns=${1#*=}; shift ;;
    --delete) action=delete; shift ;;
    --dry-run) dry_run=1; shift ;;
    --wait) wait_ready=1; shift ;;
    --keep-namespace) keep_ns=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

if ! [[ $per_type =~ ^[0-9]+$ ]] || (( per_type < 1 || per_type > 50 )); then
  die "--per-type '$per_type': want 1..50"
fi
[[ $ns =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "--namespace '$ns': not a valid namespace name"
case $ns in
  default|kube-system|kube-public|kube-node-lease) die "--namespace '$ns': refusing a system namespace (this script deletes what it labels)" ;;
esac
IFS=, read -r -a types <<<"$types_csv"
((${#types[@]} > 0)) || die "--types: empty"
for t in "${types[@]}"; do
  [[ " ${all_types[*]} " == *" $t "* ]] || die "--types: unknown type '$t' (known: ${all_types[*]})"
done

k() { "$kubectl" "$@"; }

image() { # image TYPE DEFAULT: TRAINING_IMAGE_<TYPE> or the default
  local var="TRAINING_IMAGE_${1^^}"
  echo "${!var:-$2}"
}

# Default images; versions pinned to a major line so a re-run months later behaves the same.
img_mysql=$(image mysql mysql:8.4)
img_postgres=$(image postgres postgres:17)
img_redis=$(image redis redis:7.4)
img_memcached=$(image memcached memcached:1.6)
img_nginx=$(image nginx nginx:1.27)
img_httpd=$(image httpd httpd:2.4)
img_mongo=$(image mongo mongo:7.0)
img_rabbitmq=$(image rabbitmq rabbitmq:3.13)
img_busybox=$(image busybox busybox:1.37)
img_perftest=$(image perftest pivotalrabbitmq/perf-test:2.16.0)

secret=podtype-training-credentials

# ---------- manifests ----------

namespace_yaml() {
  cat <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels:
    app.kubernetes.io/part-of: $part_of
    # Database images start as root and drop to their own user: baseline, not restricted.
    pod-security.kubernetes.io/enforce: baseline
    pod-security.kubernetes.io/warn: baseline
---
# Servers run without authentication where the image allows it (redis, memcached, mongo): only pods of
# this namespace may connect.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: same-namespace-only
  namespace: $ns
  labels:
    app.kubernetes.io/part-of: $part_of
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector: {}
EOF
}

secret_yaml() { # secret_yaml PASSWORD
  cat <<EOF
---
apiVersion: v1
kind: Secret
metadata:
  name: $secret
  namespace: $ns
  labels:
    app.kubernetes.io/part-of: $part_of
type: Opaque
stringData:
  password: "$1"
EOF
}

# server TYPE I IMAGE PORT CPU MEM_REQ MEM_LIM ENV_YAML VOLUME_PATH [ARGS_YAML]
server() {
  local type=$1 i=$2 img=$3 port=$4 cpu=$5 memreq=$6 memlim=$7 env=$8 vol=$9 args=${10:-}
  local name="$type-$i"
  cat <<EOF
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $name
  namespace: $ns
  labels: &labels
    app.kubernetes.io/name: $type
    app.kubernetes.io/instance: $name
    app.kubernetes.io/component: server
    app.kubernetes.io/part-of: $part_of
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector:
    matchLabels:
      app.kubernetes.io/instance: $name
      app.kubernetes.io/component: server
  template:
    metadata:
      labels: *labels
    spec:
      automountServiceAccountToken: false
      securityContext:
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: $type
          image: $img
EOF
  if [[ -n $args ]]; then printf '%s\n' "$args"; fi
  if [[ -n $env ]]; then printf '          env:\n%s\n' "$env"; fi
  cat <<EOF
          ports:
            - {name: service, containerPort: $port}
          readinessProbe:
            tcpSocket: {port: service}
            periodSeconds: 5
          resources:
            requests: {cpu: $cpu, memory: $memreq}
            limits: {memory: $memlim}
          securityContext:
            allowPrivilegeEscalation: false
          volumeMounts:
            - {name: data, mountPath: $vol}
      volumes:
        # Training data is disposable: a restart starts from an empty database.
        - name: data
          emptyDir: {sizeLimit: 2Gi}
---
apiVersion: v1
kind: Service
metadata:
  name: $name
  namespace: $ns
  labels:
    app.kubernetes.io/name: $type
    app.kubernetes.io/instance: $name
    app.kubernetes.io/part-of: $part_of
spec:
  selector:
    app.kubernetes.io/instance: $name
    app.kubernetes.io/component: server
  ports:
    - {name: service, port: $port, targetPort: service}
EOF
}

# loadgen TYPE I IMAGE SCRIPT [ARGS_MODE]: a load generator running SCRIPT with sh -c (or, when
# ARGS_MODE=args, passing SCRIPT lines as the image's arguments). TARGET, LEVEL and PASSWORD are set.
loadgen() {
  local type=$1 i=$2 img=$3 script=$4 mode=${5:-sh}
  local name="$type-$i-load" level=$(( i % 3 + 1 ))
  local cmd
  if [[ $mode == sh ]]; then
    cmd="          command: [\"/bin/sh\", \"-c\"]
          args:
            - |
$(sed 's/^/              /' <<<"$script")"
  else
    cmd="          args:
$(sed 's/^\(.*\)$/            - "\1"/' <<<"$script")"
  fi
  cat <<EOF
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $name
  namespace: $ns
  labels: &labels
    # Not "$type": the collector labels pods by app.kubernetes.io/name, and this pod is a client.
    app.kubernetes.io/name: loadgen
    app.kubernetes.io/instance: $name
    app.kubernetes.io/component: load-generator
    app.kubernetes.io/part-of: $part_of
    podtype.io/load-target: $type
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/instance: $name
      app.kubernetes.io/component: load-generator
  template:
    metadata:
      labels: *labels
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65534
        runAsGroup: 65534
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: load
          image: $img
$cmd
          env:
            - {name: TARGET, value: $type-$i}
            - {name: LEVEL, value: "$level"}
            - {name: HOME, value: /tmp}
            - name: PASSWORD
              valueFrom: {secretKeyRef: {name: $secret, key: password}}
          resources:
            requests: {cpu: 50m, memory: 64Mi}
            limits: {memory: 512Mi}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 256Mi}
EOF
}

env_secret() { # env_secret NAME: an env entry holding the shared password
  printf '            - name: %s\n              valueFrom: {secretKeyRef: {name: %s, key: password}}' "$1" "$secret"
}
env_value() { printf '            - {name: %s, value: "%s"}' "$1" "$2"; }
nl=$'\n'

instance() { # instance TYPE I: server and load generator manifests
  local t=$1 i=$2
  case $t in
    mysql)
      server mysql "$i" "$img_mysql" 3306 100m 512Mi 1Gi "$(env_secret MYSQL_ROOT_PASSWORD)" /var/lib/mysql
      loadgen mysql "$i" "$img_mysql" 'until mysqladmin ping -h "$TARGET" -uroot -p"$PASSWORD" --silent; do sleep 5; done
while true; do
  mysqlslap -h "$TARGET" -uroot -p"$PASSWORD" --concurrency=$((4 * LEVEL)) --iterations=5 \
    --number-of-queries=$((1000 * LEVEL)) --auto-generate-sql --auto-generate-sql-load-type=mixed \
    --auto-generate-sql-add-autoincrement >/dev/null || sleep 10
  sleep 2
done' ;;
    postgres)
      server postgres "$i" "$img_postgres" 5432 100m 256Mi 1Gi \
        "$(env_secret POSTGRES_PASSWORD)$nl$(env_value PGDATA /var/lib/postgresql/data/pgdata)" /var/lib/postgresql/data
      loadgen postgres "$i" "$img_postgres" 'export PGPASSWORD="$PASSWORD"
until pg_isready -q -h "$TARGET" -U postgres; do sleep 3; done
pgbench -q -i -s $((5 * LEVEL)) -h "$TARGET" -U postgres postgres
while true; do
  pgbench -c $((4 * LEVEL)) -j 2 -T 120 -h "$TARGET" -U postgres postgres >/dev/null || sleep 10
  sleep 2
done' ;;
    redis)
      server redis "$i" "$img_redis" 6379 100m 128Mi 512Mi "" /data
      loadgen redis "$i" "$img_redis" 'while true; do
  redis-benchmark -h "$TARGET" -q -n $((50000 * LEVEL)) -c $((10 * LEVEL)) -P 4 -t set,get,incr,lpush,lpop,hset >/dev/null || sleep 10
  sleep 2
done' ;;
    memcached)
      server memcached "$i" "$img_memcached" 11211 50m 64Mi 256Mi "" /tmp '          args: ["-m", "128"]'
      loadgen memcached "$i" "$img_busybox" 'while true; do
  n=0
  while [ $n -lt $((300 * LEVEL)) ]; do
    printf "set key%d 0 300 32\r\n0123456789abcdef0123456789abcdef\r\nget key%d\r\n" $n $((n / 2))
    n=$((n + 1))
  done | nc -w 2 "$TARGET" 11211 >/dev/null || sleep 5
  sleep 1
done' ;;
    nginx|httpd)
      local img=$img_nginx; [[ $t == httpd ]] && img=$img_httpd
      # The data volume is only a scratch dir for these stateless servers (logs/cache).
      local vol=/var/cache/nginx; [[ $t == httpd ]] && vol=/usr/local/apache2/logs
      server "$t" "$i" "$img" 80 50m 64Mi 256Mi "" "$vol"
      loadgen "$t" "$i" "$img_httpd" 'while true; do
  ab -q -k -n $((20000 * LEVEL)) -c $((5 * LEVEL)) "http://$TARGET/" >/dev/null || sleep 5
  sleep 2
done' ;;
    mongo)
      server mongo "$i" "$img_mongo" 27017 100m 256Mi 1Gi "" /data/db
      loadgen mongo "$i" "$img_mongo" 'until mongosh --quiet "mongodb://$TARGET:27017/load" --eval "db.runCommand({ping: 1})" >/dev/null; do sleep 5; done
exec mongosh --quiet "mongodb://$TARGET:27017/load" --eval "
  const level = Number(process.env.LEVEL);
  while (true) {
    const docs = [];
    for (let i = 0; i < 200 * level; i++) docs.push({i, s: \"x\".repeat(256), t: new Date()});
    db.docs.insertMany(docs);
    db.docs.find({i: {\$lt: 50}}).limit(200).toArray();
    db.docs.updateMany({i: {\$lt: 10}}, {\$inc: {n: 1}});
    if (db.docs.estimatedDocumentCount() > 200000) db.docs.deleteMany({});
    sleep(500);
  }"' ;;
    rabbitmq)
      server rabbitmq "$i" "$img_rabbitmq" 5672 100m 256Mi 1Gi \
        "$(env_value RABBITMQ_DEFAULT_USER training)$nl$(env_secret RABBITMQ_DEFAULT_PASS)" /var/lib/rabbitmq
      loadgen rabbitmq "$i" "$img_perftest" '--uri
amqp://training:$(PASSWORD)@$(TARGET):5672
--producers
$(LEVEL)
--consumers
$(LEVEL)
--rate
200
--size
1000' args ;;
  esac
}

manifests() { # manifests PASSWORD
  namespace_yaml
  [[ -n $1 ]] && secret_yaml "$1"
  local t i
  for t in "${types[@]}"; do
    for ((i = 0; i < per_type; i++)); do
      instance "$t" "$i"
    done
  done
}

new_password() { # URL-safe, so it can sit in an AMQP URI
  LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true
}

# ---------- actions ----------

if [[ $action == delete ]]; then
  sel="app.kubernetes.io/part-of=$part_of"
  cmds=("$kubectl delete deployments,services,networkpolicies,secrets -n $ns -l $sel --ignore-not-found --wait=false")
  [[ $keep_ns == 1 ]] || cmds+=("$kubectl delete namespace $ns --ignore-not-found --wait=false  # only if labelled $sel")
  if [[ $dry_run == 1 ]]; then
    printf '%s\n' "${cmds[@]}"
    exit 0
  fi
  k delete deployments,services,networkpolicies,secrets -n "$ns" -l "$sel" --ignore-not-found --wait=false
  if [[ $keep_ns == 0 ]] && [[ -n $(k get namespace "$ns" -l "$sel" -o name --ignore-not-found 2>/dev/null) ]]; then
    k delete namespace "$ns" --wait=false
  fi
  exit 0
fi

if [[ $dry_run == 1 ]]; then
  # The Secret is printed with a fresh password: what a first apply would create.
  manifests "$(new_password)"
  exit 0
fi

password=
if ! k get secret "$secret" -n "$ns" >/dev/null 2>&1; then
  password=$(new_password)   # created once; later runs keep it (the databases were initialised with it)
fi
manifests "$password" | k apply -f -

# Converge to exactly N per type: remove instances of types or indexes no longer wanted.
want=" "
for t in "${types[@]}"; do
  for ((i = 0; i < per_type; i++)); do want+="$t-$i $t-$i-load "; done
done
while read -r obj; do
  [[ -z $obj ]] && continue
  name=${obj#*/}
  [[ $want == *" $name "* ]] || k delete -n "$ns" "$obj" --wait=false
done < <(k get deployments,services -n "$ns" -l "app.kubernetes.io/part-of=$part_of" -o name)

if [[ $wait_ready == 1 ]]; then
  k wait -n "$ns" --for=condition=Available deployment -l "app.kubernetes.io/part-of=$part_of" --timeout=10m
fi
echo "training-pods: ${#types[@]} types x $per_type in namespace $ns; watch: $kubectl get pods -n $ns -L app.kubernetes.io/name"
