#!/usr/bin/env bash
# The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok,
# run by kwokctl's binary runtime from the binaries tools/build-tools.sh built, all on 127.0.0.1.
#   tools/cluster.sh up      start it (a no-op when it already answers), kubeconfig in .cluster/kubeconfig
#   tools/cluster.sh down    stop every process and remove .cluster/
#   tools/cluster.sh status  exit 0 when the API server answers
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$root/tools/versions.env"
tools=${TOOLS_DIR:-$root/.tools}
state=${LLMOPS_CLUSTER_DIR:-$root/.cluster}
name=llmops
kubeconfig=$state/kubeconfig
kwokctl=$tools/kwok-$KWOK_VERSION/kwokctl
k8s=$tools/kubernetes-$KUBERNETES_VERSION
kubectl=$k8s/kubectl
export KWOK_WORKDIR=$state/kwok

apiserver_port=${LLMOPS_APISERVER_PORT:-36443}
etcd_port=${LLMOPS_ETCD_PORT:-32379}
etcd_peer_port=$((etcd_port + 1))
controller_port=${LLMOPS_KWOK_PORT:-32247}
# kwokctl picks free ports for these two unless told; set them to pin them.
scheduler_port=${LLMOPS_SCHEDULER_PORT:-}
controller_manager_port=${LLMOPS_CONTROLLER_MANAGER_PORT:-}

log() { printf '[cluster] %s\n' "$*" >&2; }

answers() {
  [[ -f $kubeconfig && -x $kubectl ]] && timeout 10 "$kubectl" --kubeconfig "$kubeconfig" --request-timeout=5s \
    get --raw /readyz >/dev/null 2>&1
}

# Every component listens on 127.0.0.1 only (kwokctl's default is 0.0.0.0); etcd skips fsync; the
# one controller manager and scheduler hold no lease (on a loaded machine a lease renewal that
# times out made both exit, and every Deployment stopped getting pods);
# Services get a /16 (the default /24 runs out at a few hundred LLMDeployments).
loopback_config() {
  local etcd_url=http://127.0.0.1:$etcd_port peer_url=http://127.0.0.1:$etcd_peer_port
  cat <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - {key: bind-address, value: 127.0.0.1}
  - {key: advertise-address, value: 127.0.0.1}
  - {key: service-cluster-ip-range, value: 10.96.0.0/16}
- name: kube-controller-manager
  extraArgs:
  - {key: bind-address, value: 127.0.0.1}
  - {key: leader-elect, value: "false"}
- name: kube-scheduler
  extraArgs:
  - {key: bind-address, value: 127.0.0.1}
  - {key: leader-elect, value: "false"}
- name: etcd
  extraArgs:
  - {key: listen-client-urls, value: "$etcd_url"}
  - {key: advertise-client-urls, value: "$etcd_url"}
  - {key: listen-peer-urls, value: "$peer_url"}
  - {key: initial-advertise-peer-urls, value: "$peer_url"}
  - {key: initial-cluster, value: "node0=$peer_url"}
  - {key: unsafe-no-fsync, value: "true"}
- name: kwok-controller
  extraArgs:
  - {key: server-address, value: "127.0.0.1:$controller_port"}
YAML
}

# Who listens on a TCP port of this machine: "NAME (pid N)", or nothing when it is free.
port_holder() {
  local port=$1 who
  python3 -c 'import socket,sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$port" && return 0
  who=$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n 1)
  echo "${who:-a process this user cannot see}"
}

# Fails with the port, the variable that moves it, and its holder, before kwokctl would start
# components that cannot bind (and then talk to another cluster's API server with our CA).
check_ports() {
  local taken=0 pair port var holder
  for pair in "$apiserver_port:LLMOPS_APISERVER_PORT" "$etcd_port:LLMOPS_ETCD_PORT" \
    "$etcd_peer_port:LLMOPS_ETCD_PORT (+1)" "$controller_port:LLMOPS_KWOK_PORT" \
    "${scheduler_port:-0}:LLMOPS_SCHEDULER_PORT" "${controller_manager_port:-0}:LLMOPS_CONTROLLER_MANAGER_PORT"; do
    port=${pair%%:*} var=${pair#*:}
    (( port )) || continue
    holder=$(port_holder "$port")
    [[ -z $holder ]] && continue
    log "port $port ($var) is taken by $holder"
    taken=1
  done
  (( ! taken )) || { log "stop what holds it, or set the variable named to a free port"; exit 1; }
}

up() {
  if answers; then log "already up ($kubeconfig)"; return; fi
  "$root/tools/build-tools.sh" kubernetes etcd kwok gateway-api inference-extension
  [[ -d $KWOK_WORKDIR/clusters/$name ]] && down
  check_ports
  mkdir -p "$state"
  local started=$SECONDS
  loopback_config >"$state/kwokctl.yaml"
  KWOK_KUBE_VERSION=$KUBERNETES_VERSION "$kwokctl" --name "$name" create cluster --runtime binary \
    --kubeconfig "$kubeconfig" \
    --kube-apiserver-binary "$k8s/kube-apiserver" \
    --kube-controller-manager-binary "$k8s/kube-controller-manager" \
    --kube-scheduler-binary "$k8s/kube-scheduler" \
    --etcd-binary "$tools/etcd-$ETCD_VERSION/etcd" \
    --kwok-controller-binary "$tools/kwok-$KWOK_VERSION/kwok" \
    --kube-apiserver-port "$apiserver_port" --etcd-port "$etcd_port" --controller-port "$controller_port" \
    ${scheduler_port:+--kube-scheduler-port "$scheduler_port"} \
    ${controller_manager_port:+--kube-controller-manager-port "$controller_manager_port"} \
    --kube-authorization --kube-admission -c "$state/kwokctl.yaml" \
    --wait 3m >"$state/kwokctl.log" 2>&1 || { cat "$state/kwokctl.log" >&2; exit 1; }
  local k=("$kubectl" --kubeconfig "$kubeconfig")
  "${k[@]}" apply --server-side -f "$root/tools/cluster/nodes.yaml" -f "$root/tools/cluster/volumes.yaml" >/dev/null
  # The Gateway API and its Inference Extension, as a GPU cluster with an inference gateway has them
  # (HTTPRoute traffic splits, mirrors and header rules; InferencePools as backends).
  "${k[@]}" apply --server-side -f "$tools/gateway-api-$GATEWAY_API_VERSION/" \
    -f "$tools/gateway-api-inference-extension-$GATEWAY_API_INFERENCE_EXTENSION_VERSION/" >/dev/null
  "${k[@]}" wait --for=condition=Ready node --all --timeout=120s >/dev/null
  until "${k[@]}" get serviceaccount default -n default >/dev/null 2>&1; do sleep 1; done
  log "up in $((SECONDS - started))s: kubectl --kubeconfig $kubeconfig get nodes"
}

down() {
  # The engines' controllers (tools/engines.sh) keep their pid files in .cluster/ too.
  "$root/tools/engines.sh" stop all >/dev/null 2>&1 || true
  if [[ -d $KWOK_WORKDIR/clusters/$name ]]; then
    "$kwokctl" --name "$name" delete cluster --kubeconfig "$kubeconfig" >/dev/null 2>&1 || true
  fi
  # Whatever kwokctl could not stop (a half-created cluster): its pid files name the processes.
  local pid_file
  for pid_file in "$KWOK_WORKDIR"/clusters/"$name"/pids/*.pid; do
    [[ -f $pid_file ]] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
  rm -rf "$state"
  log "down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) answers ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
