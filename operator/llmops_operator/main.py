"""The ``llmops-operator`` command: preflight checks, then the kopf operator."""

from __future__ import annotations

import argparse
import random
import sys

import kopf
from pydantic import ValidationError

from . import GROUP, __version__
from .api import KINDS
from .config import Settings


class PreflightError(RuntimeError):
    """The cluster is not usable: unreachable, or the CRDs are not installed."""


def load_kube_config() -> None:
    from kubernetes import client, config

    from .kube import API_CONNECTIONS

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, FileNotFoundError, TypeError) as error:
            raise PreflightError(f"no Kubernetes credentials found: {error}") from error
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = API_CONNECTIONS
    client.Configuration.set_default(configuration)


def preflight() -> None:
    """Fail fast, with a message a human can act on, before kopf starts retrying forever."""
    from kubernetes import client
    from urllib3.exceptions import HTTPError

    from .kube import Kube

    load_kube_config()
    kube = Kube()
    host = client.Configuration.get_default_copy().host
    try:
        kube.server_version()
    except client.ApiException as error:
        if error.status not in (401, 403):
            raise PreflightError(f"the Kubernetes API server at {host} answered {error.status}") from error
    except (HTTPError, OSError, ValueError) as error:
        raise PreflightError(f"cannot reach the Kubernetes API server at {host}: {error}") from error
    missing = []
    for kind in KINDS:
        name = f"{kind.kind_info.plural}.{GROUP}"
        try:
            kube.read_crd(name)
        except client.ApiException as error:
            if error.status == 404:
                missing.append(name)
            elif error.status != 403:  # a namespaced install may not read CRDs; kopf will tell
                raise PreflightError(f"reading CRD {name} failed: {error.status} {error.reason}") from error
    if missing:
        raise PreflightError(
            "CustomResourceDefinitions missing: "
            + ", ".join(missing)
            + " (install them: kubectl apply -f crds/)"
        )


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="llmops-operator", description=__doc__)
    parser.add_argument("--namespace", "-n", action="append", dest="namespaces", help="watch only these")
    parser.add_argument("--health-port", type=int, help="liveness endpoint port (/healthz)")
    parser.add_argument("--metrics-port", type=int, help="the operator's Prometheus metrics port (0: off)")
    parser.add_argument("--log-format", choices=["json", "plain"])
    parser.add_argument("--verbose", "-v", action="store_true", default=None)
    parser.add_argument("--peering", help="kopf peering name, for several replicas with one acting")
    parser.add_argument("--prometheus-url")
    parser.add_argument("--mlflow-tracking-uri")
    parser.add_argument("--model-fetcher-image", help="image with the mlflow CLI for registry artifacts")
    parser.add_argument("--evaluator-image", help="the operator's own image, run by evaluation Jobs")
    parser.add_argument(
        "--resync-seconds",
        type=int,
        help="how often registry models are asked for again (alias polling, retries)",
    )
    parser.add_argument("--version", action="version", version=f"llmops-operator {__version__}")
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        parser.error(f"invalid configuration: {error}")


def evaluate(argv: list[str]) -> int:
    """``llmops-operator evaluate --run-id RUN``: the evaluation Job's process (evaluation/runner.py)."""
    parser = argparse.ArgumentParser(prog="llmops-operator evaluate", description=evaluate.__doc__)
    parser.add_argument("--run-id", required=True, help="the MLflow run the operator prepared")
    args = parser.parse_args(argv)
    from .evaluation import runner

    return runner.main(args.run_id)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["evaluate"]:
        return evaluate(arguments[1:])
    settings = parse_args(argv)
    try:
        preflight()
    except PreflightError as error:
        print(f"llmops-operator: {error}", file=sys.stderr)
        return 2

    from . import handlers, telemetry

    handlers.register(settings)
    if settings.metrics_port:
        telemetry.serve(settings.metrics_port, settings.health_host)
    kopf.configure(
        verbose=settings.verbose,
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    # kopf pauses every peer when two share a priority; replicas of one Deployment must differ.
    priority = settings.peering_priority or random.SystemRandom().randint(1, 2**31 - 1)
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=priority,
        liveness_endpoint=f"http://{settings.health_host}:{settings.health_port}/healthz",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
