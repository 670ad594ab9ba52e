#!/usr/bin/env bash
# LiteLLM's proxy, the LLMGateway's data plane, in a venv of its own (never the project's .venv).
#
#   tools/litellm.sh install           venv in .tools/litellm-<version>/ from tools/litellm/requirements.txt,
#                                      every wheel checked against its pinned hash (no-op when installed)
#   tools/litellm.sh lock              re-resolve litellm[proxy]==$LITELLM_VERSION with prometheus_client
#                                      and prisma, and rewrite requirements.txt with the index's hashes
#   tools/litellm.sh serve CONFIG [ARGS]  the proxy on CONFIG, in the foreground; port $LITELLM_PORT
#                                      (default 4000)
#   tools/litellm.sh python [ARGS]     the venv's Python
#
# `[proxy]` leaves out prometheus_client (the /metrics endpoint) and the pure-Python prisma package
# (without it a bad key answers 500 instead of 401), so both are locked in too. Wheels are kept in
# .cache/wheels/ (git-ignored): a reinstall downloads nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$root/tools/versions.env"
tools_dir=${TOOLS_DIR:-$root/.tools}
cache_dir=${LLMOPS_CACHE_DIR:-$root/.cache}
venv=$tools_dir/litellm-$LITELLM_VERSION
wheels=$cache_dir/wheels
requirements=$root/tools/litellm/requirements.txt
export PIP_DISABLE_PIP_VERSION_CHECK=1

# shellcheck source=lock.sh
source "$root/tools/lock.sh"
log() { printf '[litellm] %s\n' "$*" >&2; }

install() {
  if [[ -f $venv/.installed ]] && cmp -s "$requirements" "$venv/.installed"; then return; fi
  hold litellm-install
  if [[ -f $venv/.installed ]] && cmp -s "$requirements" "$venv/.installed"; then release; return; fi
  log "installing litellm[proxy] $LITELLM_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  mkdir -p "$wheels"
  local pip=("$venv/bin/pip" --quiet)
  "${pip[@]}" download --require-hashes --no-deps -d "$wheels" -r "$requirements"
  "${pip[@]}" install --require-hashes --no-deps --no-index --find-links "$wheels" -r "$requirements"
  cp "$requirements" "$venv/.installed"
  log "installed: $(du -sh "$venv" | cut -f1) in $venv"
  release
}

lock() {
  local scratch
  scratch=$(mktemp -d)
  python3 -m venv "$scratch/venv"
  "$scratch/venv/bin/pip" --quiet install --dry-run --ignore-installed --report "$scratch/report.json" \
    "litellm[proxy]==$LITELLM_VERSION" prometheus_client prisma
  python3 "$root/tools/litellm/lock.py" "$scratch/report.json" >"$requirements"
  rm -rf "$scratch"
  log "wrote $requirements ($(grep -c -- --hash "$requirements") pinned packages)"
}

serve() {
  local config=${1:?usage: tools/litellm.sh serve CONFIG [litellm arguments]}
  shift
  install
  # The bundled price map, not one fetched at start-up; no usage reporting.
  export LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY=False
  exec "$venv/bin/litellm" --config "$config" --host 127.0.0.1 --port "${LITELLM_PORT:-4000}" "$@"
}

case ${1:-} in
  install) install ;;
  lock) lock ;;
  serve) shift; serve "$@" ;;
  python) shift; install; exec "$venv/bin/python" "$@" ;;
  *) echo "usage: $0 install|lock|serve CONFIG [ARGS]|python [ARGS]" >&2; exit 2 ;;
esac
