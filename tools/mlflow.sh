#!/usr/bin/env bash
# A local MLflow tracking server with a sqlite backend, for `make run` and the integration tests.
#   tools/mlflow.sh start DIR PORT   start it (no-op when it already answers); data and log in DIR
#   tools/mlflow.sh stop DIR         stop the server started for DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mlflow=$root/.venv/bin/mlflow

case ${1:-} in
  start)
    dir=$2 port=$3
    mkdir -p "$dir/artifacts"
    if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then exit 0; fi
    setsid nohup "$mlflow" server --backend-store-uri "sqlite:///$dir/mlflow.db" \
      --artifacts-destination "$dir/artifacts" --host 127.0.0.1 --port "$port" --workers 1 \
      >"$dir/server.log" 2>&1 &
    echo $! >"$dir/server.pid"
    wait_seconds=${LLMOPS_MLFLOW_START_SECONDS:-120}  # a loaded machine may need longer
    for _ in $(seq "$wait_seconds"); do
      curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && exit 0
      kill -0 "$(cat "$dir/server.pid")" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
      sleep 1
    done
    echo "MLflow did not answer on port $port within ${wait_seconds}s; see $dir/server.log" >&2; exit 1 ;;
  stop)
    dir=$2
    if [[ -f $dir/server.pid ]]; then
      pid=$(cat "$dir/server.pid")
      kill -- "-$pid" 2>/dev/null || true  # the whole process group: server, workers, job consumers
      rm -f "$dir/server.pid"
    fi ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
