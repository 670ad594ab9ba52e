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
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(MODEL, ALIAS)
        print(f"models:/{MODEL}@{ALIAS} is version {version.version}")
        return
    except MlflowException:
        pass
    if not client.search_registered_models(filter_string=f"name = '{MODEL}'"):
        client.create_registered_model(MODEL, description="Demo model for make run")
    version = client.create_model_version(MODEL, f"s3://models/{MODEL}/1")
    client.set_registered_model_alias(MODEL, ALIAS, version.version)
    print(f"registered models:/{MODEL}@{ALIAS} as version {version.version}")


if __name__ == "__main__":
    main(sys.argv[1])
