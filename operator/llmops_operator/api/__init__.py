"""The public API: one pydantic model per kind, the single source of the CRDs in crds/."""

from .canaryrollout import CanaryRollout
from .common import Condition, Resource
from .driftmonitor import DriftMonitor
from .llmdeployment import LLMDeployment
from .llmgateway import LLMGateway

KINDS: tuple[type[Resource], ...] = (LLMDeployment, CanaryRollout, DriftMonitor, LLMGateway)

__all__ = ["KINDS", "CanaryRollout", "Condition", "DriftMonitor", "LLMDeployment", "LLMGateway", "Resource"]
