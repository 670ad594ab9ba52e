# Every set-up step lives here; README's two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
include tools/versions.env
KUBECTL := .tools/kubernetes-$(KUBERNETES_VERSION)/kubectl
KUBECONFIG_FILE := .cluster/kubeconfig
DEMO_NAMESPACE ?= llmops-demo
MLFLOW_PORT ?= 35000
export LLMOPS_MLFLOW_TRACKING_URI ?= http://127.0.0.1:$(MLFLOW_PORT)
PROMETHEUS_PORT ?= 39090
# The retraining engines' controllers built by `make tools`, run by `make run` and the tests.
ENGINES := kueue jobset
export LLMOPS_PROMETHEUS_URL ?= http://127.0.0.1:$(PROMETHEUS_PORT)
export PROMETHEUS_PORT DEMO_NAMESPACE
# The demo's data plane: vLLM-compatible simulators (light), or ENGINE=vllm for two real vLLM servers.
ENGINE ?= simulator
export ENGINE

.PHONY: help prefetch venv tools cluster cluster-down crds crds-check manifests lint test test-unit test-integration run operator stop

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## Python virtual environment with the operator and dev tools

tools: ## build or fetch and cache (seconds when cached) the Kubernetes binaries, etcd, kwok, helm, Prometheus, the CRDs it checks against, and the retraining engines (Kueue, JobSet)
	tools/build-tools.sh
	tools/build-tools.sh $(ENGINES)

cluster: tools ## start the local control plane (no-op when up); kubeconfig in .cluster/kubeconfig
	tools/cluster.sh up

cluster-down: stop ## stop the operator, MLflow and every process of the local control plane
	tools/cluster.sh down

crds: venv ## regenerate crds/ from the pydantic models (and the chart's copy)
	$(PY) -m llmops_operator.crdgen crds
	cp crds/*.yaml charts/llmops-operator/crds/
	$(PY) tools/render_manifests.py --crds-only

manifests: venv tools ## re-render manifests/ (kustomize) from the Helm chart
	$(PY) tools/render_manifests.py
	$(PY) tools/argocd_cm.py

crds-check: venv
	$(PY) -m llmops_operator.crdgen --check crds

lint: venv ## ruff, mypy (strict for the package) and the import contracts (pyproject.toml)
	$(VENV)/bin/ruff check operator tests tools benchmarks examples
	$(VENV)/bin/ruff format --check operator tests tools benchmarks examples
	$(VENV)/bin/mypy
	PYTHONPATH=operator $(VENV)/bin/lint-imports

test-unit: venv
	$(VENV)/bin/pytest tests/unit

test-integration: venv cluster
	$(VENV)/bin/pytest tests/integration

prefetch: ## start the tests' heavy one-time installs (vLLM, LiteLLM, Redis, llm-d-inference-sim) in the background; log in .tools/prefetch.log
	@mkdir -p .tools
	@nohup tools/prefetch.sh > .tools/prefetch.log 2>&1 &

test: prefetch venv lint crds-check cluster ## lint, unit tests, and integration tests on the local control plane
	$(VENV)/bin/pytest tests

run: venv cluster ## the local control plane, MLflow, the CRDs, the operator and the samples (ENGINE=vllm: on real vLLM)
	@if [ "$(ENGINE)" = vllm ]; then tools/vllm.sh models; fi
	tools/mlflow.sh start .cluster/mlflow $(MLFLOW_PORT)
	$(PY) tools/seed_registry.py $(LLMOPS_MLFLOW_TRACKING_URI)
	$(PY) tools/demo_dataplane.py start
	$(KUBECTL) --kubeconfig $(KUBECONFIG_FILE) apply --server-side -f crds/
	$(KUBECTL) --kubeconfig $(KUBECONFIG_FILE) wait --for=condition=Established crd -l app.kubernetes.io/name=llmops-operator
	tools/engines.sh start $(ENGINES)
	tools/operator.sh start
	$(KUBECTL) --kubeconfig $(KUBECONFIG_FILE) create namespace $(DEMO_NAMESPACE) --dry-run=client -o yaml \
	  | $(KUBECTL) --kubeconfig $(KUBECONFIG_FILE) apply -f - >/dev/null
	$(KUBECTL) --kubeconfig $(KUBECONFIG_FILE) apply --server-side -n $(DEMO_NAMESPACE) \
	  -f manifests/samples/ -f manifests/samples/kueue/ -f manifests/demo/
	@echo
	@echo "The operator is running (log: .cluster/operator.log). Watch it work:"
	@echo "  export KUBECONFIG=$$PWD/$(KUBECONFIG_FILE)"
	@echo "  $(KUBECTL) get llmops -n $(DEMO_NAMESPACE) -o wide"
	@echo "  $(KUBECTL) get llmdeployments,canaryrollouts,driftmonitors -n $(DEMO_NAMESPACE) --watch"
	@echo "  PATH=$$PWD/$(VENV)/bin:\$$PATH $(KUBECTL) llmops -n $(DEMO_NAMESPACE) rollout get llama-8b-v2 --watch"
	@echo "  PATH=$$PWD/$(VENV)/bin:\$$PATH $(KUBECTL) llmops -n $(DEMO_NAMESPACE) drift get llama-8b-live --watch"
	@echo "Make the prompts drift (a retraining Job, a new version, its CanaryRollout follow):"
	@echo "  $(PY) tools/demo_dataplane.py shift 80"
	@echo "Kueue admits the retraining (LocalQueue training): $(KUBECTL) get workloads -n $(DEMO_NAMESPACE)"
	@echo "Before that, make the retrained model answer worse, and watch its evaluation reject it:"
	@echo "  $(PY) tools/demo_dataplane.py worse 20"
	@echo "MLflow: $(LLMOPS_MLFLOW_TRACKING_URI)   Prometheus: $(LLMOPS_PROMETHEUS_URL)   Stop everything: make cluster-down"

operator: venv ## run the operator in the foreground against .cluster/kubeconfig
	KUBECONFIG=$(KUBECONFIG_FILE) $(VENV)/bin/llmops-operator --log-format plain

stop: ## stop the operator, Kueue, JobSet, MLflow, Prometheus and the simulators started by make run
	tools/operator.sh stop
	tools/engines.sh stop all
	tools/mlflow.sh stop .cluster/mlflow
	@if [ -x $(PY) ]; then $(PY) tools/demo_dataplane.py stop; fi
