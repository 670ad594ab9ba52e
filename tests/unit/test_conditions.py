from llmops_operator.conditions import find_condition, set_condition, status_changes


def test_new_condition_gets_all_metav1_fields() -> None:
    conditions = set_condition([], "Ready", "False", "ModelLoading", "loading", 3, now="2026-01-01T00:00:00Z")
    assert conditions == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "ModelLoading",
            "message": "loading",
            "observedGeneration": 3,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]


def test_transition_time_moves_only_when_status_changes() -> None:
    first = set_condition([], "Ready", "False", "ModelLoading", "", 1, now="2026-01-01T00:00:00Z")
    same = set_condition(first, "Ready", "False", "CrashLooping", "boom", 2, now="2026-01-01T01:00:00Z")
    assert find_condition(same, "Ready")["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # type: ignore[index]
    assert find_condition(same, "Ready")["reason"] == "CrashLooping"  # type: ignore[index]
    flipped = set_condition(same, "Ready", "True", "Available", "", 2, now="2026-01-01T02:00:00Z")
    assert find_condition(flipped, "Ready")["lastTransitionTime"] == "2026-01-01T02:00:00Z"  # type: ignore[index]


def test_other_conditions_are_kept_and_order_is_stable() -> None:
    conditions = set_condition([], "Ready", "True", "Available", "", 1)
    conditions = set_condition(conditions, "Degraded", "False", "AsExpected", "", 1)
    conditions = set_condition(conditions, "Ready", "False", "CrashLooping", "", 1)
    assert [c["type"] for c in conditions] == ["Degraded", "Ready"]


def test_status_changes_is_empty_when_nothing_differs() -> None:
    status = {"observedGeneration": 2, "conditions": [{"type": "Ready"}], "replicas": 1}
    assert status_changes(status, {"observedGeneration": 2, "conditions": [{"type": "Ready"}]}) == {}
    assert status_changes(status, {"observedGeneration": 3}) == {"observedGeneration": 3}
