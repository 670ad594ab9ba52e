#!/usr/bin/env bash
# Starts or stops the operator in the background for `make run`, against .cluster/kubeconfig.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pid_file=$root/.cluster/operator.pid
log_file=$root/.cluster/operator.log

# The local MLflow and Prometheus of `make run`, unless the caller says otherwise.
export LLMOPS_MLFLOW_TRACKING_URI=${LLMOPS_MLFLOW_TRACKING_URI:-http://127.0.0.1:35000}
export LLMOPS_PROMETHEUS_URL=${LLMOPS_PROMETHEUS_URL:-http://127.0.0.1:39090}

running() { [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

case ${1:-} in
  start)
    if running; then echo "[operator] already running (pid $(cat "$pid_file"))"; exit 0; fi
    KUBECONFIG=$root/.cluster/kubeconfig nohup "$root/.venv/bin/llmops-operator" --log-format json \
      --health-port "${LLMOPS_HEALTH_PORT:-38080}" >"$log_file" 2>&1 &
    echo $! >"$pid_file"
    for _ in $(seq 60); do
      curl -fsS "http://127.0.0.1:${LLMOPS_HEALTH_PORT:-38080}/healthz" >/dev/null 2>&1 && {
        echo "[operator] running (pid $(cat "$pid_file"))"; exit 0; }
      running || { cat "$log_file" >&2; exit 1; }
      sleep 1
    done
    echo "[operator] no health answer after 60s; see $log_file" >&2; exit 1 ;;
  stop)
    if running; then kill "$(cat "$pid_file")"; fi
    rm -f "$pid_file" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
