#!/usr/bin/env bash
# The retraining engines' real controllers (Kueue, JobSet) as host processes against the local
# control plane, as tools/build-tools.sh built them from their Go modules.
#   tools/engines.sh start kueue|jobset ...   apply CRDs and webhooks, start, wait until ready (no-op when running)
#   tools/engines.sh stop kueue|jobset|all ...
#   tools/engines.sh status kueue|jobset      exit 0 when its readiness probe answers
# Webhooks are served on 127.0.0.1 with a self-signed CA put into the webhook configurations (and
# Kueue's CRD conversion webhook). State, certificates and logs: .cluster/<engine>/, .cluster/<engine>.log.
# Ports: LLMOPS_KUEUE_WEBHOOK_PORT, LLMOPS_KUEUE_HEALTH_PORT, LLMOPS_JOBSET_WEBHOOK_PORT, LLMOPS_JOBSET_HEALTH_PORT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$root/tools/versions.env"
tools=${TOOLS_DIR:-$root/.tools}
state=${LLMOPS_CLUSTER_DIR:-$root/.cluster}
kubeconfig=$state/kubeconfig
kubectl=$tools/kubernetes-$KUBERNETES_VERSION/kubectl
python=$root/.venv/bin/python
[[ -x $python ]] || python=python3

log() { printf '[engines] %s\n' "$*" >&2; }
k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

version_of() { case $1 in kueue) echo "$KUEUE_VERSION" ;; jobset) echo "$JOBSET_VERSION" ;; esac; }
module_of() { echo "sigs.k8s.io/$1"; }
webhook_port() {
  case $1 in kueue) echo "${LLMOPS_KUEUE_WEBHOOK_PORT:-34443}" ;; jobset) echo "${LLMOPS_JOBSET_WEBHOOK_PORT:-34444}" ;; esac
}
health_port() {
  case $1 in kueue) echo "${LLMOPS_KUEUE_HEALTH_PORT:-34081}" ;; jobset) echo "${LLMOPS_JOBSET_HEALTH_PORT:-34082}" ;; esac
}
known() { [[ $1 == kueue || $1 == jobset ]] || { echo "unknown engine $1 (kueue, jobset)" >&2; exit 2; }; }

pid_file() { echo "$state/$1/$1.pid"; }
running() { [[ -f $(pid_file "$1") ]] && kill -0 "$(cat "$(pid_file "$1")")" 2>/dev/null; }
ready() { curl -fsS "http://127.0.0.1:$(health_port "$1")/readyz" >/dev/null 2>&1; }

# A CA and a serving certificate for 127.0.0.1, in the form Kueue's certificate rotator accepts as
# its own (CA named kueue-ca with that DNS name, keys in traditional RSA form, the service's DNS
# name), so it keeps them instead of silently generating others.
certificates() {
  local dir=$1 engine=$2
  [[ -f $dir/tls.crt ]] && return
  mkdir -p "$dir"
  local ca_name=$engine-ca service=$engine-webhook-service.$engine-system.svc
  openssl genrsa -traditional -out "$dir/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$dir/ca.key" -days 3650 -subj "/O=$engine/CN=$ca_name" \
    -addext "subjectAltName=DNS:$ca_name" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,digitalSignature,keyEncipherment" -out "$dir/ca.crt"
  openssl genrsa -traditional -out "$dir/tls.key" 2048 2>/dev/null
  openssl req -new -key "$dir/tls.key" -subj "/CN=$service" -out "$dir/tls.csr"
  printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
    "$service" >"$dir/tls.ext"
  openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 \
    -extfile "$dir/tls.ext" -out "$dir/tls.crt" 2>/dev/null
  rm -f "$dir/tls.csr" "$dir/tls.ext" "$dir/ca.srl"
}

config() {
  local engine=$1 dir=$2
  local webhook=$(webhook_port "$engine") health=127.0.0.1:$(health_port "$engine")
  if [[ $engine == kueue ]]; then
    cat <<YAML
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: kueue-system
health: {healthProbeBindAddress: "$health"}
metrics: {bindAddress: "0"}
webhook: {host: 127.0.0.1, port: $webhook, certDir: "$dir/certs"}
leaderElection: {leaderElect: false}
internalCertManagement: {enable: true, webhookServiceName: kueue-webhook-service, webhookSecretName: kueue-webhook-server-cert}
featureGates: {VisibilityOnDemand: false}
integrations:
  frameworks: [batch/job, jobset.x-k8s.io/jobset]
YAML
  else
    cat <<YAML
apiVersion: config.jobset.x-k8s.io/v1alpha1
kind: Configuration
health: {healthProbeBindAddress: "$health"}
metrics: {bindAddress: "0"}
webhook: {host: 127.0.0.1, port: $webhook, certDir: "$dir/certs"}
leaderElection: {leaderElect: false}
internalCertManagement: {enable: false}
YAML
  fi
}

start() {
  local engine=$1
  if running "$engine" && ready "$engine"; then log "$engine already running"; return; fi
  running "$engine" && stop "$engine"
  local version binary dir module
  version=$(version_of "$engine")
  binary=$tools/$engine-$version/$engine
  [[ -x $binary ]] || "$root/tools/build-tools.sh" "$engine"
  k get --raw /readyz >/dev/null || { log "the local control plane does not answer (tools/cluster.sh up)"; exit 1; }
  dir=$state/$engine
  mkdir -p "$dir"
  local started=$SECONDS
  module=$(go mod download -json "$(module_of "$engine")@$version" \
    | "$python" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  certificates "$dir/pki" "$engine"
  # The controller reads its serving certificate from certDir; in a cluster a Secret volume puts it there.
  mkdir -p "$dir/certs" && cp "$dir/pki/tls.crt" "$dir/pki/tls.key" "$dir/certs/"
  config "$engine" "$dir" >"$dir/config.yaml"
  local port=$(webhook_port "$engine")
  "$python" "$root/tools/engine_manifests.py" crds "$engine" "$module" "$port" "$dir/pki/ca.crt" >"$dir/crds.yaml"
  "$python" "$root/tools/engine_manifests.py" webhooks "$engine" "$module" "$port" "$dir/pki/ca.crt" >"$dir/webhooks.yaml"
  k apply --server-side --force-conflicts -f "$dir/crds.yaml" >/dev/null
  # kubectl wait errs while a just-applied CRD has no conditions yet: retry.
  for _ in $(seq 60); do k wait --for=condition=Established -f "$dir/crds.yaml" --timeout=30s >/dev/null 2>&1 && break; sleep 0.5; done
  k apply --server-side --force-conflicts -f "$dir/webhooks.yaml" >/dev/null
  if [[ $engine == kueue ]]; then
    k create namespace kueue-system --dry-run=client -o yaml | k apply -f - >/dev/null
    k create secret generic kueue-webhook-server-cert -n kueue-system --dry-run=client -o yaml \
      --from-file="$dir/pki/ca.crt" --from-file="$dir/pki/ca.key" \
      --from-file="$dir/pki/tls.crt" --from-file="$dir/pki/tls.key" | k apply --server-side --force-conflicts -f - >/dev/null
  fi
  KUBECONFIG=$kubeconfig setsid nohup "$binary" --config "$dir/config.yaml" >"$state/$engine.log" 2>&1 &
  echo $! >"$(pid_file "$engine")"
  for _ in $(seq 120); do
    if ready "$engine"; then log "$engine $version ready in $((SECONDS - started))s (log: $state/$engine.log)"; return; fi
    running "$engine" || { tail -n 30 "$state/$engine.log" >&2; log "$engine exited"; exit 1; }
    sleep 0.5
  done
  tail -n 30 "$state/$engine.log" >&2
  log "$engine not ready after 60s; see $state/$engine.log"; exit 1
}

# Stops the controller and removes its webhook configurations, which would otherwise refuse every
# Job or JobSet create with the webhook gone.
stop() {
  local engine=$1
  if running "$engine"; then
    kill "$(cat "$(pid_file "$engine")")" 2>/dev/null || true
    for _ in $(seq 40); do running "$engine" || break; sleep 0.25; done
  fi
  rm -f "$(pid_file "$engine")"
  if [[ -f $kubeconfig ]] && k get --raw /readyz >/dev/null 2>&1; then
    k delete mutatingwebhookconfiguration "$engine-mutating-webhook-configuration" --ignore-not-found >/dev/null
    k delete validatingwebhookconfiguration "$engine-validating-webhook-configuration" --ignore-not-found >/dev/null
  fi
  log "$engine stopped"
}

command=${1:-}; shift || true
[[ $# -gt 0 ]] || { echo "usage: $0 start|stop|status kueue|jobset ..." >&2; exit 2; }
case $command in
  start) for e in "$@"; do known "$e"; start "$e"; done ;;
  stop) [[ $1 == all ]] && set -- jobset kueue
        for e in "$@"; do known "$e"; stop "$e"; done ;;
  status) for e in "$@"; do known "$e"; running "$e" && ready "$e"; done ;;
  *) echo "usage: $0 start|stop|status kueue|jobset ..." >&2; exit 2 ;;
esac
