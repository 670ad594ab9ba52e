#!/usr/bin/env bash
# A local Prometheus server, for `make run` and the integration tests.
#   tools/prometheus.sh start DIR PORT CONFIG   start it (no-op when it already answers); TSDB and log in DIR
#   tools/prometheus.sh stop DIR                stop the server started for DIR (its data stays)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tools/versions.env"
prometheus=${TOOLS_DIR:-$root/.tools}/prometheus-$PROMETHEUS_VERSION/prometheus

case ${1:-} in
  start)
    dir=$2 port=$3 config=$4
    mkdir -p "$dir/data"
    if curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then exit 0; fi
    [[ -x $prometheus ]] || { echo "no $prometheus: run make tools" >&2; exit 1; }
    setsid nohup "$prometheus" --config.file="$config" --storage.tsdb.path="$dir/data" \
      --web.listen-address="127.0.0.1:$port" --web.enable-lifecycle \
      --storage.tsdb.retention.time=1d --log.level=warn >"$dir/server.log" 2>&1 &
    echo $! >"$dir/server.pid"
    for _ in $(seq 60); do
      curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && exit 0
      kill -0 "$(cat "$dir/server.pid")" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
      sleep 0.5
    done
    echo "Prometheus did not become ready on port $port; see $dir/server.log" >&2; exit 1 ;;
  stop)
    dir=$2
    if [[ -f $dir/server.pid ]]; then
      pid=$(cat "$dir/server.pid")
      kill -- "-$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$dir/server.pid"
    fi ;;
  *) echo "usage: $0 start DIR PORT CONFIG | stop DIR" >&2; exit 2 ;;
esac
