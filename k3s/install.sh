#!/usr/bin/env bash
# Installs podtype on a k3s node: imports the image tarballs, creates the InfluxDB credentials,
# deploys InfluxDB + Telegraf (kubernetes/stack/) and both services (kubernetes/), then shows the result.
# Idempotent: run it again after `make images` to roll out new images; existing secrets are kept.
#
# Usage: sudo k3s/install.sh [--dry-run] [--install-k3s] [--images DIR] [--skip-images] [--skip-stack]
#                            [--timeout DURATION]
#   --dry-run      print the commands that change something instead of running them
#   --install-k3s  install a single-node k3s first if `k3s` is missing (curl -sfL https://get.k3s.io | sh -)
#   --images DIR   where metrics-collector.tar and pod-watcher.tar are (default dist/images, from `make images`)
#   --skip-images  do not import images (e.g. they come from a registry)
#   --skip-stack   use your own InfluxDB: create Secret podtype/podtype-influxdb yourself and set
#                  INFLUXDB_URL in kubernetes/base/*.env
#   --timeout      how long to wait for each rollout (default 5m)
# Environment: K3S (k3s binary, default k3s), KUBECTL (default "$K3S kubectl").
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=0
install_k3s=0
images_dir=dist/images
skip_images=0
skip_stack=0
timeout=5m
k3s_bin=${K3S:-k3s}

die() { echo "install: $*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --dry-run) dry_run=1; shift ;;
    --install-k3s) install_k3s=1; shift ;;
    --images) images_dir=${2:?--images needs a directory}; shift 2 ;;
    --skip-images) skip_images=1; shift ;;
    --skip-stack) skip_stack=1; shift ;;
    --timeout) timeout=${2:?--timeout needs a duration}; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# Server-side apply: the API server merges, so defaulted fields (a StatefulSet's volumeClaimTemplates,
# a PDB's selector) do not make every run rewrite them. --force-conflicts: for the fields in our
# manifests this script is the source of truth, as plain `kubectl apply` would be; fields set by others
# (replicas scaled by hand, restart annotations) are not in the manifests and stay as they are.
apply_flags=(--server-side --force-conflicts --field-manager=podtype-install)

# run CMD...: execute, or print it under --dry-run. Read-only commands are called directly.
run() {
  if [[ $dry_run == 1 ]]; then
    printf '+ %s\n' "$*"
  else
    "$@"
  fi
}

if [[ $dry_run == 0 && $(id -u) != 0 && -z ${KUBECTL:-} ]]; then
  die "run as root (k3s ctr and /etc/rancher/k3s/k3s.yaml need it), or set KUBECTL and pass --skip-images"
fi

step "k3s"
if ! command -v "$k3s_bin" >/dev/null 2>&1; then
  if [[ $install_k3s == 1 ]]; then
    run sh -c 'curl -sfL https://get.k3s.io | sh -'
  elif [[ $dry_run == 1 ]]; then
    echo "install: k3s not found; a real run needs it (or --install-k3s)" >&2
  else
    die "k3s not found: install it (k3s/README.md) or pass --install-k3s"
  fi
fi
read -r -a kubectl <<<"${KUBECTL:-$k3s_bin kubectl}"
k() { "${kubectl[@]}" "$@"; }
cluster=1
if ! k get --raw /readyz >/dev/null 2>&1; then
  [[ $dry_run == 1 ]] || die "the API server does not answer (${kubectl[*]} get --raw /readyz)"
  echo "install: no reachable cluster; printing what a real run would do" >&2
  cluster=0
fi
if [[ $cluster == 1 ]]; then
  run "${kubectl[@]}" wait --for=condition=Ready node --all --timeout="$timeout"
  k get nodes -o wide
fi

# repo_tag FILE: the image reference recorded in a docker-archive tarball's manifest.json.
repo_tag() {
  tar -xOf "$1" manifest.json | grep -o '"RepoTags":\["[^"]*"' | sed 's/.*\["//; s/"$//'
}
# image_digest REF: the digest containerd holds for REF, empty when absent.
image_digest() {
  [[ $cluster == 1 ]] || return 0
  "$k3s_bin" ctr -n k8s.io images ls "name==$1" 2>/dev/null | awk 'NR == 2 { print $3 }'
}

declare -A refs=()
changed=()   # services whose image content changed under the same reference
for svc in metrics-collector pod-watcher; do
  refs[$svc]=ghcr.io/podtype/$svc:dev
done
if [[ $skip_images == 0 ]]; then
  step "images"
  for svc in metrics-collector pod-watcher; do
    f=$images_dir/$svc.tar
    [[ -f $f ]] || die "$f not found: run 'make images' first (or --images DIR)"
    ref=$(repo_tag "$f")
    [[ -n $ref ]] || die "$f: no RepoTags in manifest.json; rebuild it with 'make images'"
    refs[$svc]=$ref
    before=$(image_digest "$ref")
    # Imports into the namespace the kubelet's CRI uses; unchanged content is a no-op.
    run "$k3s_bin" ctr -n k8s.io images import "$f"
    after=$(image_digest "$ref")
    if [[ -n $before && $before != "$after" ]]; then
      changed+=("deployment/$svc")
      echo "$ref: new image $after (was $before)"
    fi
  done
  echo "Imported on this node only. On other nodes of a multi-node cluster, import the same tarballs (k3s/README.md)."
fi

step "namespaces and secrets"
run "${kubectl[@]}" apply "${apply_flags[@]}" -f kubernetes/base/namespace.yaml -f kubernetes/stack/namespace.yaml
secret_exists() { [[ $cluster == 1 ]] && k get secret "$2" -n "$1" >/dev/null 2>&1; }
secret_dir=$(mktemp -d)
overlay=$(mktemp -d)
trap 'rm -rf "$secret_dir" "$overlay"' EXIT
new_password() { LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 || true; }
# Secrets go through files in a private directory: never on a command line (visible in ps).
put() { (umask 077; printf '%s' "$2" >"$secret_dir/$1"); }

if [[ $skip_stack == 0 ]]; then
  if secret_exists podtype-stack influxdb-auth; then
    echo "secret podtype-stack/influxdb-auth exists: kept"
  else
    put admin-user podtype_admin; put admin-password "$(new_password)"
    put write-user telegraf; put write-password "$(new_password)"
    put read-user podtype_reader; put read-password "$(new_password)"
    run "${kubectl[@]}" -n podtype-stack create secret generic influxdb-auth \
      --from-file="$secret_dir/admin-user" --from-file="$secret_dir/admin-password" \
      --from-file="$secret_dir/write-user" --from-file="$secret_dir/write-password" \
      --from-file="$secret_dir/read-user" --from-file="$secret_dir/read-password"
  fi
fi
if secret_exists podtype podtype-influxdb; then
  echo "secret podtype/podtype-influxdb exists: kept"
elif [[ $skip_stack == 1 ]]; then
  [[ $dry_run == 1 ]] || die "create Secret podtype/podtype-influxdb (key: password) for your InfluxDB first (kubernetes/README.md)"
else
  # The services use InfluxDB's read-only user.
  if [[ -f $secret_dir/read-password ]]; then
    cp "$secret_dir/read-password" "$secret_dir/password"
  elif [[ $cluster == 1 ]]; then
    (umask 077; k -n podtype-stack get secret influxdb-auth -o jsonpath='{.data.read-password}' | base64 -d >"$secret_dir/password")
  fi
  run "${kubectl[@]}" -n podtype create secret generic podtype-influxdb --from-file="$secret_dir/password"
fi

if [[ $skip_stack == 0 ]]; then
  step "InfluxDB and Telegraf (kubernetes/stack)"
  run "${kubectl[@]}" apply "${apply_flags[@]}" -k kubernetes/stack
  run "${kubectl[@]}" -n podtype-stack rollout status statefulset/influxdb --timeout="$timeout"
  run "${kubectl[@]}" -n podtype-stack rollout status daemonset/telegraf --timeout="$timeout"
fi

step "metrics-collector and pod-watcher (kubernetes)"
# A throw-away overlay pins the images to exactly the imported references.
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  echo "  - $(realpath --relative-to="$overlay" kubernetes)"
  echo "images:"
  for svc in metrics-collector pod-watcher; do
    ref=${refs[$svc]}
    echo "  - name: ghcr.io/podtype/$svc"
    echo "    newName: ${ref%:*}"
    echo "    newTag: ${ref##*:}"
  done
} >"$overlay/kustomization.yaml"
[[ $dry_run == 0 ]] || sed 's/^/  | /' "$overlay/kustomization.yaml"
existed=0
if [[ $cluster == 1 ]] && k -n podtype get deployment pod-watcher >/dev/null 2>&1; then existed=1; fi
run "${kubectl[@]}" apply "${apply_flags[@]}" -k "$overlay"
if [[ ${#changed[@]} -gt 0 && $existed == 1 ]]; then
  # Same tag, new content: the Deployment's spec did not change, so restart it to pick the image up.
  run "${kubectl[@]}" -n podtype rollout restart "${changed[@]}"
fi
run "${kubectl[@]}" -n podtype rollout status deployment/metrics-collector --timeout="$timeout"
run "${kubectl[@]}" -n podtype rollout status deployment/pod-watcher --timeout="$timeout"

step "result"
if [[ $cluster == 1 && $dry_run == 0 ]]; then
  k get pods -n podtype-stack -o wide 2>/dev/null || true
  k get pods -n podtype -o wide
  holder=$(k -n podtype get lease podtype-pod-watcher -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
  echo "pod-watcher leader: ${holder:-not elected yet}"
fi
cat <<'EOF'

Next:
  scripts/training-pods.sh --per-type 4          # labelled training workloads with load generators
  kubectl -n podtype logs deploy/metrics-collector -f   # trains at start, then every TRAIN_INTERVAL (1h);
  kubectl -n podtype rollout restart deploy/metrics-collector   # ... retrain now, once the pods ran ~30 min
  kubectl get pods -A -o custom-columns='NS:.metadata.namespace,POD:.metadata.name,TYPE:.metadata.annotations.podtype\.io/type,CONF:.metadata.annotations.podtype\.io/confidence'
  kubectl get events -A --field-selector reason=Classified
EOF
