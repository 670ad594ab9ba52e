#!/usr/bin/env bash
# A local Redis server (Debian's redis-server, unpacked, not installed), for the LLMGateway's cache
# and tenant counters in `make run` and the integration tests.
#   tools/redis.sh install             unpack into .tools/redis-<version>/ (no-op when there)
#   tools/redis.sh start DIR [PORT]    start it (no-op when it already answers); data and log in DIR;
#                                      PORT defaults to $LLMOPS_REDIS_PORT, else 6379
#   tools/redis.sh stop DIR            stop the server started for DIR (its data stays)
#   tools/redis.sh cli [ARGS]          redis-cli
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$root/tools/versions.env"
tools_dir=${TOOLS_DIR:-$root/.tools}
out=$tools_dir/redis-$REDIS_VERSION
export LD_LIBRARY_PATH=$out/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# shellcheck source=lock.sh
source "$root/tools/lock.sh"
log() { printf '[redis] %s\n' "$*" >&2; }

candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }

install() {
  if [[ -x $out/redis-server ]]; then return; fi
  hold redis-install
  if [[ -x $out/redis-server ]]; then release; return; fi
  log "fetching redis-server $REDIS_VERSION (Debian packages, unpacked without installing)"
  local work=$tools_dir/build/redis version
  rm -rf "$work" && mkdir -p "$work"
  version=$(candidate redis-server)
  if [[ $version != *":$REDIS_VERSION"* ]]; then
    (apt-get update -qq >/dev/null 2>&1 || true)
    version=$(candidate redis-server)
  fi
  [[ $version == *":$REDIS_VERSION"* ]] || { log "no redis-server $REDIS_VERSION package (found '$version')"; exit 1; }
  # redis-server is a link to redis-check-rdb (redis-tools); liblzf1 and libjemalloc2 are linked.
  (cd "$work" && chmod 777 . &&
    apt-get download -qq "redis-server=$version" "redis-tools=$version" liblzf1 libjemalloc2 2>/dev/null &&
    for deb in ./*.deb; do dpkg-deb -x "$deb" x; done)
  mkdir -p "$out.tmp/lib"
  cp "$work/x/usr/bin/redis-check-rdb" "$out.tmp/redis-server"
  cp "$work/x/usr/bin/redis-cli" "$out.tmp/"
  cp -P "$work"/x/usr/lib/x86_64-linux-gnu/{liblzf.so.1*,libjemalloc.so.2} "$out.tmp/lib/"
  rm -rf "$out" && mv "$out.tmp" "$out" && rm -rf "$work"
  release
}

case ${1:-} in
  install) install ;;
  start)
    dir=${2:?usage: $0 start DIR [PORT]} port=${3:-${LLMOPS_REDIS_PORT:-6379}}
    install
    mkdir -p "$dir"
    if "$out/redis-cli" -p "$port" ping >/dev/null 2>&1; then exit 0; fi
    # Appendfile on, fsync every second: counters and spent budgets survive a restart of Redis too.
    setsid nohup "$out/redis-server" --bind 127.0.0.1 --port "$port" --dir "$dir" \
      --appendonly yes --save "" --daemonize no --logfile "$dir/server.log" >/dev/null 2>&1 &
    echo $! >"$dir/server.pid"
    for _ in $(seq 50); do
      "$out/redis-cli" -p "$port" ping >/dev/null 2>&1 && exit 0
      kill -0 "$(cat "$dir/server.pid")" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
      sleep 0.1
    done
    echo "Redis did not answer on port $port; see $dir/server.log" >&2; exit 1 ;;
  stop)
    dir=${2:?usage: $0 stop DIR}
    if [[ -f $dir/server.pid ]]; then
      pid=$(cat "$dir/server.pid")
      kill -- "-$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$dir/server.pid"
    fi ;;
  cli) shift; install; exec "$out/redis-cli" "$@" ;;
  *) echo "usage: $0 install | start DIR [PORT] | stop DIR | cli [ARGS]" >&2; exit 2 ;;
esac
