"""Traffic routers: how a canary weight becomes real traffic, one module per mechanism."""

from .base import Sides, TrafficRouter
from .gateway_api import GatewayAPIRouter
from .replica_ratio import ReplicaRatioRouter

__all__ = ["GatewayAPIRouter", "ReplicaRatioRouter", "Sides", "TrafficRouter"]
