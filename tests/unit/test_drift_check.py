"""A DriftMonitor check without a cluster: windows, queries, verdicts, episode ids, the Job."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from llmops_operator.api.driftmonitor import DriftMonitorSpec
from llmops_operator.drift import check
from llmops_operator.drift.retraining import job_result, retraining_job

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, float("inf")]


def spec(**fields: object) -> DriftMonitorSpec:
    base: dict[str, object] = {
        "targetRef": {"name": "llama"},
        "interval": "1m",
        "currentWindow": "1h",
        "baseline": {"relative": {"offset": "168h", "duration": "1h"}},
        "features": [
            {"name": "prompt-tokens", "source": {"histogram": {"metric": "vllm:request_prompt_tokens"}}},
            {
                "name": "ttft",
                "source": {"histogram": {"metric": "vllm:time_to_first_token_seconds"}},
                "test": "ks",
            },
        ],
        "policy": {"minSamples": 100},
        "retraining": {"template": {"image": "trainer:1", "resources": {"gpus": 1, "memory": "32Gi"}}},
    }
    base.update(fields)
    return DriftMonitorSpec.model_validate(base)


def cumulative(samples: np.ndarray) -> dict[float, float]:
    return {bound: float((samples <= bound).sum()) for bound in BOUNDS}


def test_windows_and_queries() -> None:
    baseline, current = check.windows(spec(), NOW)
    assert current.text() == "2026-03-01T11:00:00Z/2026-03-01T12:00:00Z"
    assert baseline.text() == "2026-02-22T11:00:00Z/2026-02-22T12:00:00Z"
    fixed = spec(baseline={"fixed": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T06:00:00Z"}})
    assert check.windows(fixed, NOW)[0].seconds == 6 * 3600
    query = check.histogram_query(spec().features[0], "ns", "llama", current)
    selector = 'namespace="ns",llmops_dev_llmdeployment="llama"'
    assert query == f"sum by (le) (increase(vllm:request_prompt_tokens_bucket{{{selector}}}[3600s]))"


def test_unsupported_sources_are_named() -> None:
    assert check.unsupported(spec()) is None
    dataset = spec(baseline={"dataset": {"configMap": {"name": "ref", "key": "data.csv"}}})
    assert "dataset" in (check.unsupported(dataset) or "")


def test_a_real_shift_drifts_and_the_same_distribution_does_not() -> None:
    rng = np.random.default_rng(7)
    base = rng.lognormal(3.0, 0.5, 5000)
    same = rng.lognormal(3.0, 0.5, 5000)
    longer = rng.lognormal(4.0, 0.5, 5000)
    monitor = spec()
    steady = check.judge(
        monitor,
        {"prompt-tokens": (cumulative(base), cumulative(same)), "ttft": (cumulative(base), cumulative(same))},
    )
    assert steady.drifted == [] and not check.is_drift(monitor, steady)
    shifted = check.judge(
        monitor,
        {
            "prompt-tokens": (cumulative(base), cumulative(longer)),
            "ttft": (cumulative(base), cumulative(same)),
        },
    )
    assert shifted.drifted == ["prompt-tokens"] and check.is_drift(monitor, shifted)
    prompt = shifted.features[0]
    assert prompt.test == "psi" and prompt.statistic is not None and prompt.statistic > 0.2
    assert prompt.drift_type in ("sudden", "gradual") and prompt.current_samples == 5000
    assert "prompt-tokens" in shifted.summary()


def test_too_few_samples_is_no_data_never_drift() -> None:
    rng = np.random.default_rng(1)
    few = check.judge(
        spec(),
        {
            "prompt-tokens": (cumulative(rng.lognormal(3, 0.5, 50)), cumulative(rng.lognormal(5, 0.5, 50))),
            "ttft": (cumulative(rng.lognormal(3, 0.5, 50)), cumulative(rng.lognormal(5, 0.5, 50))),
        },
    )
    assert few.drifted == [] and few.no_data == ["prompt-tokens", "ttft"]
    assert "too few samples" in few.summary()


def test_episode_ids_and_job_names_are_deterministic() -> None:
    first = check.drift_event_id("uid-1", NOW)
    assert first == check.drift_event_id("uid-1", NOW) != check.drift_event_id("uid-2", NOW)
    name = check.job_name("a-very-long-monitor-name-that-keeps-going-and-going", first)
    assert len(name) <= 63 and name.endswith(first)


def test_the_job_carries_what_the_trainer_needs() -> None:
    monitor = {"metadata": {"name": "drift", "namespace": "ns", "uid": "u1"}}
    baseline, current = check.windows(spec(), NOW)
    retraining = spec().retraining
    assert retraining is not None
    job = retraining_job(
        monitor=monitor,
        retraining=retraining,
        name="drift-retrain-abc",
        event_id="abc",
        drifted=["prompt-tokens"],
        baseline=baseline,
        current=current,
        tracking_uri="http://mlflow:5000",
        model_name="llama-3-8b",
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["DRIFT_EVENT_ID"] == "abc" and env["DRIFTED_FEATURES"] == "prompt-tokens"
    assert env["MODEL_NAME"] == "llama-3-8b" and env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["CURRENT_WINDOW"] == current.text()
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_job_outcome() -> None:
    assert job_result(None) == "Missing"
    assert job_result({"status": {}}) == "Running"
    assert job_result({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}) == "Succeeded"
    assert job_result({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}) == "Failed"
