"""What a retraining Job does, in miniature: read what the DriftMonitor injected, train, log the
run to MLflow, and register the new version tagged with the drift event, so the operator finds it
and ships it through a CanaryRollout.

Env (set by the operator on the Job): MLFLOW_TRACKING_URI, MODEL_NAME, DRIFT_EVENT_ID,
DRIFTED_FEATURES, BASELINE_WINDOW, CURRENT_WINDOW. A real trainer would fine-tune on traffic
sampled from CURRENT_WINDOW; this one fits a tiny stand-in so the example runs anywhere in seconds.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from mlflow import MlflowClient

EVENT_TAG = "llmops.dev/drift-event"


def main() -> int:
    tracking_uri = os.environ["MLFLOW_TRACKING_URI"]
    model_name = os.environ["MODEL_NAME"]
    event_id = os.environ["DRIFT_EVENT_ID"]
    features = [f for f in os.environ.get("DRIFTED_FEATURES", "").split(",") if f]
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    experiment = f"retraining-{model_name}"
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, tags={EVENT_TAG: event_id}, run_name=f"retrain-{event_id}")
    run_id = run.info.run_id
    for key in ("BASELINE_WINDOW", "CURRENT_WINDOW", "DRIFTED_FEATURES"):
        client.log_param(run_id, key.lower(), os.environ.get(key, ""))

    # "Training": a least-squares fit standing in for a fine-tune, with a loss to log.
    rng = np.random.default_rng(abs(hash(event_id)) % 2**32)
    x = rng.normal(size=(256, 4))
    y = x @ np.array([0.5, -1.0, 2.0, 0.1]) + rng.normal(scale=0.1, size=256)
    weights, *_ = np.linalg.lstsq(x, y, rcond=None)
    loss = float(np.mean((x @ weights - y) ** 2))
    client.log_metric(run_id, "train_loss", loss)
    client.log_text(
        run_id, json.dumps({"weights": weights.tolist(), "features": features}), "model/weights.json"
    )
    client.set_terminated(run_id)

    if not client.search_registered_models(filter_string=f"name = '{model_name}'"):
        client.create_registered_model(model_name)
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    version = client.create_model_version(model_name, source, run_id=run_id, tags={EVENT_TAG: event_id})
    print(f"registered {model_name} version {version.version} for drift event {event_id} (loss {loss:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
