"""Replica-ratio routing: the split is the ratio of Ready pods behind the stable Service, so the
canary's pod count is the weight, and the stable side shrinks only as canary pods become Ready."""

from __future__ import annotations

import pytest

from llmops_operator.rollout.progress import canary_replicas, stable_replicas
from llmops_operator.routing import ReplicaRatioRouter, Sides


@pytest.mark.parametrize(
    ("full", "weight", "canary"),
    [
        (4, 0, 0),  # no traffic asked for: no canary pod
        (4, 10, 1),  # a small weight still gets one pod, never zero
        (100, 1, 1),
        (3, 50, 2),  # 1.5 pods: rounded up, so the canary is never under its weight
        (10, 25, 3),
        (4, 75, 3),
        (10, 90, 9),
        (101, 100, 101),  # the whole weight: as many pods as the stable asks for
        (1, 100, 1),
    ],
)
def test_canary_pods_are_the_weight_rounded_up(full: int, weight: int, canary: int) -> None:
    assert canary_replicas(full, weight) == canary


@pytest.mark.parametrize(
    ("full", "weight", "canary_ready", "stable"),
    [
        (4, 25, 0, 4),  # canary not Ready yet: the stable side keeps all its capacity
        (4, 25, 1, 3),
        (4, 50, 1, 3),  # shrinks only by the canary pods that are Ready
        (4, 50, 2, 2),
        (3, 50, 2, 2),  # the stable keeps its rounded-down share's complement
        (4, 100, 4, 0),
        (4, 0, 0, 4),
    ],
)
def test_stable_pods_shrink_only_as_canary_pods_are_ready(
    full: int, weight: int, canary_ready: int, stable: int
) -> None:
    assert stable_replicas(full, weight, canary_ready) == stable


def test_the_router_asks_the_stable_side_for_its_share_once_canary_pods_are_ready() -> None:
    router = ReplicaRatioRouter()
    assert router.shares_service
    assert router.stable_replicas(25, Sides(full=4, canary_ready=0, stable_ready=4, stable_pods=4)) == 4
    assert router.stable_replicas(25, Sides(full=4, canary_ready=1, stable_ready=4, stable_pods=4)) == 3


@pytest.mark.parametrize(
    ("weight", "canary_ready", "stable_pods", "verified"),
    [
        (10, 1, 9, True),  # one canary pod Ready of ten: 10% of the pods behind the Service
        (10, 0, 10, False),  # canary pod not Ready: nothing reaches it yet
        (10, 1, 10, False),  # canary Ready but the stable has not shrunk: the split is 1/11
        (10, 0, 9, False),
        (50, 5, 5, True),
        (50, 4, 6, False),
        (50, 5, 6, False),  # the stable side still runs one pod over its half
        (100, 10, 0, True),
        (0, 0, 10, True),  # all back on the stable
    ],
)
def test_a_weight_is_verified_only_when_both_sides_have_the_pods_for_it(
    weight: int, canary_ready: int, stable_pods: int, verified: bool
) -> None:
    sides = Sides(full=10, canary_ready=canary_ready, stable_ready=stable_pods, stable_pods=stable_pods)
    assert ReplicaRatioRouter().set_weight(weight, sides) is verified


def test_it_describes_itself_for_status_messages() -> None:
    assert ReplicaRatioRouter().describe() == "replica ratio behind the stable Service"
