"""Registers the demo model of `make run` in the local MLflow registry (idempotent).

The version points at an S3 location: nothing is downloaded, vLLM would stream it at start.
"""

from __future__ import annotations

import sys

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

MODEL = "llama-3-8b-instruct"
ALIAS = "champion"


def main(tracking_uri: str) -> None:
    """Version 1 is the champion the demo LLMDeployment serves; version 2 is what the demo
    CanaryRollout ships."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if not client.search_registered_models(filter_string=f"name = '{MODEL}'"):
        client.create_registered_model(MODEL, description="Demo model for make run")
    versions = client.search_model_versions(filter_string=f"name = '{MODEL}'")
    for number in range(len(versions) + 1, 3):
        client.create_model_version(MODEL, f"s3://models/{MODEL}/{number}")
    try:
        version = client.get_model_version_by_alias(MODEL, ALIAS)
    except MlflowException:
        client.set_registered_model_alias(MODEL, ALIAS, "1")
        version = client.get_model_version_by_alias(MODEL, ALIAS)
    print(f"models:/{MODEL}@{ALIAS} is version {version.version}; versions 1 and 2 registered")


if __name__ == "__main__":
    main(sys.argv[1])
