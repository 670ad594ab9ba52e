"""llmops-operator: serve, watch, retrain and safely ship LLMs on Kubernetes."""

GROUP = "llmops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
FIELD_MANAGER = "llmops-operator"

__version__ = "0.1.0"
