#!/usr/bin/env bash
# The test suite's heavy one-time installs, started in the background by `make test` while it sets
# up the rest (the Python environment, lint, the control plane): PyPI's vLLM and its models, the
# LiteLLM proxy with Redis, and llm-d-inference-sim. Downloads wait on the network, not the CPU,
# so they overlap with the set-up's builds; run inside the suite they cost it minutes. Each
# installer holds a lock (.tools/.<name>.lock), so a test that needs one first waits for it.
# The Go build runs at the lowest priority: it may still be going when the first tests start.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$SECONDS
tools/vllm.sh models &
(tools/litellm.sh install && tools/redis.sh install) &
GOMAXPROCS=1 nice -n 19 tools/build-tools.sh llm-d-inference-sim &
failed=0
for job in $(jobs -p); do wait "$job" || failed=1; done
echo "[prefetch] done after $((SECONDS - start))s (a failure here is repeated by the test that needs it)"
exit $failed
