"""``kubectl llmops``: watch and steer CanaryRollouts, and watch DriftMonitors, from a terminal.

    kubectl llmops rollout get NAME [--watch]
    kubectl llmops rollout promote|abort|retry|pause|resume NAME
    kubectl llmops drift get NAME [--watch]

Installed as the console script ``kubectl-llmops``, which kubectl finds on PATH as a plugin.
Requests are an annotation (``llmops.dev/request: VERB:NONCE``) the operator acts on once, so they
are declarative, audited by the API server, and work with nothing but RBAC on the rollout.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, cast

from kubernetes import client, config

from . import GROUP, VERSION
from .names import REQUEST_ANNOTATION
from .rollout.progress import REQUESTS, TERMINAL, Step, plan

MARKS = {"Successful": "ok", "Failed": "FAIL", "Inconclusive": "no data", "Error": "error"}


def _step_text(step: Step) -> str:
    kind, duration = step.kind, step.duration_seconds
    if kind == "setWeight":
        return f"setWeight {step.weight}%"
    if kind == "pause":
        return "pause (until promoted)" if duration is None else f"pause {duration:g}s"
    if kind == "setMirror":
        return f"setMirror {step.mirror_percent}%"
    if kind == "setHeaderRoute" and step.header is not None:
        return f"setHeaderRoute {step.header.name} {step.header.match} {step.header.value}"
    if kind == "experiment" and step.experiment is not None:
        return f"experiment {step.experiment.strategy} from {step.weight}% for {duration or 0:g}s"
    return "analysis" + (f" ({', '.join(step.metrics)})" if step.metrics else "")


def _traffic_extras(status: dict[str, Any]) -> str:
    """The mirror and header route the rollout has on the route, if any."""
    extras = [f"  mirrored {status['mirrorPercent']}%"] if status.get("mirrorPercent") else []
    header = status.get("headerRoute")
    if header:
        extras.append(f"  header {header['name']} {header.get('match', 'Exact')} {header['value']} -> canary")
    return "".join(extras)


def _experiment_lines(status: dict[str, Any]) -> list[str]:
    lines = []
    for r in status.get("experiments") or []:
        lines.append(
            f"  step {r['step'] + 1} {r['metric']}: {r.get('decision')}  canary {r.get('canary')} "
            f"stable {r.get('stable')}  difference {r.get('difference')} in {r.get('interval')}"
        )
    changes = status.get("banditChanges") or []
    if changes:
        lines.append(
            f"  bandit: {len(changes)} changes, last to {changes[-1]['weight']}% at {changes[-1]['at']}"
        )
    return ["Experiments:", *lines] if lines else []


def _condition_lines(status: dict[str, Any]) -> list[str]:
    """The conditions, one a line: why the object stands where it stands."""
    lines = ["Conditions:"]
    for condition in status.get("conditions") or []:
        message = f"  {condition.get('message')}" if condition.get("message") else ""
        lines.append(
            f"  {condition['type']:<12} {condition['status']:<7} {condition.get('reason', '')}{message}"
        )
    return lines


def render_rollout(rollout: dict[str, Any]) -> str:
    """The live view: steps with the current one marked, the split, each metric against its
    threshold, and the conditions that say why it stands where it stands."""
    from .api.canaryrollout import CanaryRolloutSpec

    meta, status = rollout["metadata"], rollout.get("status") or {}
    spec = CanaryRolloutSpec.model_validate(rollout.get("spec") or {})
    steps = plan(spec)
    current = int(status.get("currentStepIndex") or 0)
    phase = status.get("phase") or "Pending"
    paused = f" ({status['pausedReason']})" if status.get("pausedReason") else ""
    lines = [
        f"Name:      {meta['name']}  (namespace {meta.get('namespace', '')})",
        f"Target:    {spec.target_ref.name}  ->  canary {status.get('canaryName') or '-'}",
        f"Status:    {phase}{paused}",
        f"Versions:  stable {status.get('stableVersion') or '-'}"
        f"  canary {status.get('canaryVersion') or '-'}",
        f"Traffic:   canary {status.get('canaryWeight', 0)}%  stable {status.get('stableWeight', 100)}%"
        + _traffic_extras(status),
        "Steps:",
    ]
    for index, step in enumerate(steps):
        if phase in TERMINAL or index < current:
            mark = "  done " if phase == "Promoted" or index < current else "       "
        else:
            mark = "  ->   " if index == current else "       "
        lines.append(f"{mark}{index + 1}. {_step_text(step)}")
    lines.extend(_evaluation_lines(status.get("evaluation") or {}))
    tallies = {t["name"]: t for t in status.get("tallies") or []}
    measurements = status.get("measurements") or []
    if measurements:
        lines.append("Metrics:")
        width = max(len(m["metric"]) for m in measurements)
        for m in measurements:
            tally = tallies.get(m["metric"], {})
            counts = f"ok {tally.get('successful', 0)} fail {tally.get('failed', 0)} "
            counts += f"nodata {tally.get('inconclusive', 0)} err {tally.get('errors', 0)}"
            value = f"{m.get('value') or '-'} (want {m.get('threshold') or '-'})"
            line = f"  {m['metric']:<{width}}  {MARKS.get(m['phase'], m['phase']):<8} {value}"
            lines.append(f"{line}  [{counts}]")
            if m.get("message") and m["phase"] != "Successful":
                lines.append(f"  {'':<{width}}  {m['message']}")
    lines.extend(_experiment_lines(status))
    lines.extend(_fail_fast_lines(status))
    lines.extend(_condition_lines(status))
    return "\n".join(lines)


def _fail_fast_lines(status: dict[str, Any]) -> list[str]:
    """Each metric's sequential test as it accumulates, and how a rollback went."""
    lines: list[str] = []
    evidence = status.get("failFast") or []
    if evidence:
        width = max(len(e["metric"]) for e in evidence)
        lines.append("Fail fast:")
        for e in evidence:
            samples = int(e.get("samples") or 0)
            mean = float(e.get("sum") or 0.0) / samples if samples else 0.0
            mark = "FIRED" if e.get("fired") else "watch"
            restarts = int(e.get("restarts") or 0)
            restarted = f" (test {restarts + 1})" if restarts else ""
            lines.append(
                f"  {e['metric']:<{width}}  {mark:<5} {e.get('test', '')} {e.get('side', '')}: "
                f"log LR {float(e.get('statistic') or 0.0):.2f} / {float(e.get('boundary') or 0.0):.2f}  "
                f"looks {samples}{restarted}  mean log ratio {mean:+.2f}  last {e.get('lastValue') or '-'}"
                f"  (at {e.get('lastSampleAt') or '-'})"
            )
    rollback = status.get("rollback")
    if rollback:
        short = rollback.get("capacityShortSeconds")
        shortfall = "pending" if short is None else f"{short:g} s"
        removed = rollback.get("canaryRemovedAt") or "not yet"
        order = rollback.get("order")
        lines.append(f"Rollback:  {order}  canary removed {removed}  capacity short {shortfall}")
    return lines


def _evaluation_lines(evaluation: dict[str, Any]) -> list[str]:
    """Each scorer against its threshold, and against the stable: the paired difference and its
    interval."""
    if not evaluation:
        return []
    run = f"  (MLflow run {evaluation['runId']})" if evaluation.get("runId") else ""
    lines = [
        f"Evaluation: {evaluation.get('phase') or 'Pending'}, {evaluation.get('prompts', 0)} prompts{run}"
    ]
    scorers = evaluation.get("scorers") or []
    width = max((len(s["name"]) for s in scorers), default=0)
    for s in scorers:
        value = f"{s.get('value') or '-'} (want {s.get('threshold') or '-'})"
        line = f"  {s['name']:<{width}}  {s['phase']:<12} {value}"
        if s.get("difference"):
            paired = f"{s['difference']} {s.get('interval', '')} p={s.get('pValue')}"
            line += f"  vs stable {s.get('stableValue')}: {paired}"
        lines.append(line)
        if s.get("message") and s["phase"] != "Passed":
            lines.append(f"  {'':<{width}}  {s['message']}")
    if evaluation.get("message") and evaluation.get("phase") not in ("Passed", "Failed"):
        lines.append(f"  {evaluation['message']}")
    return lines


def render_drift(monitor: dict[str, Any]) -> str:
    """Each feature's latest score against its threshold, the episode, the last retraining."""
    meta, status = monitor["metadata"], monitor.get("status") or {}
    spec = monitor.get("spec") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    drifted = conditions.get("Drifted", {})
    lines = [
        f"Name:      {meta['name']}  (namespace {meta.get('namespace', '')})",
        f"Target:    {(spec.get('targetRef') or {}).get('name', '-')}",
        f"Drifted:   {drifted.get('status', 'Unknown')} ({drifted.get('reason', '-')})"
        + (f"  event {status['driftEventId']}" if status.get("driftEventId") else ""),
        f"Checked:   {status.get('lastCheckTime') or '-'}   report {status.get('reportUri') or '-'}",
    ]
    features = status.get("features") or []
    if features:
        lines.append("Features:")
        width = max(len(f["name"]) for f in features)
        lines.append(
            f"  {'NAME':<{width}}  TEST           SCORE  THRESHOLD  P-VALUE    DRIFTED  TYPE                N"
        )
        for f in features:
            score = "-" if f.get("statistic") is None else f"{f['statistic']:.4g}"
            p_value = "-" if f.get("pValue") is None else f"{f['pValue']:.3g}"
            samples = f"{f.get('baselineSamples', 0)}/{f.get('currentSamples', 0)}"
            verdict = "yes" if f.get("drifted") else "no"
            lines.append(
                f"  {f['name']:<{width}}  {f.get('test', ''):<13} {score:>6}  {f.get('threshold', ''):>9}  "
                f"{p_value:<9}  {verdict:<7}  {f.get('driftType', ''):<18}  {samples}"
            )
    run = status.get("lastRetraining")
    if run:
        shipped = (
            f"  -> version {run['modelVersion']} in {run['rolloutName']}" if run.get("rolloutName") else ""
        )
        lines.append(f"Retraining: Job {run['jobName']} {run.get('result', '')}{shipped}")
    lines.extend(_condition_lines(status))
    return "\n".join(lines)


class Resources:
    def __init__(self, namespace: str | None, kubeconfig: str | None) -> None:
        config.load_kube_config(config_file=kubeconfig)
        self.api = client.CustomObjectsApi()
        if namespace is None:
            _, context = config.list_kube_config_contexts(config_file=kubeconfig)
            namespace = (context or {}).get("context", {}).get("namespace") or "default"
        self.namespace = namespace

    def get(self, plural: str, name: str) -> dict[str, Any]:
        found = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        return cast(dict[str, Any], found)

    def request(self, name: str, verb: str) -> None:
        patch = {"metadata": {"annotations": {REQUEST_ANNOTATION: f"{verb}:{time.time_ns()}"}}}
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, "canaryrollouts", name, patch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kubectl llmops", description="Watch and steer CanaryRollouts; watch DriftMonitors."
    )
    parser.add_argument("-n", "--namespace", default=None)
    parser.add_argument("--kubeconfig", default=None)
    commands = parser.add_subparsers(dest="resource", required=True)
    rollout = commands.add_parser("rollout", help="CanaryRollout commands")
    verbs = rollout.add_subparsers(dest="verb", required=True)
    get = verbs.add_parser("get", help="show a rollout: steps, weights, each metric against its threshold")
    get.add_argument("name")
    get.add_argument("-w", "--watch", action="store_true", help="redraw until the rollout ends")
    get.add_argument("--interval", type=float, default=2.0)
    for verb in REQUESTS:
        verbs.add_parser(verb, help=f"ask the operator to {verb} the rollout").add_argument("name")
    drift = commands.add_parser("drift", help="DriftMonitor commands")
    drift_get = drift.add_subparsers(dest="verb", required=True).add_parser(
        "get", help="show a monitor: each feature's score against its threshold"
    )
    drift_get.add_argument("name")
    drift_get.add_argument("-w", "--watch", action="store_true", help="redraw after every check")
    drift_get.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    plural, render = (
        ("canaryrollouts", render_rollout) if args.resource == "rollout" else ("driftmonitors", render_drift)
    )
    try:
        resources = Resources(args.namespace, args.kubeconfig)
        if args.verb != "get":
            resources.request(args.name, args.verb)
            print(f"canaryrollout/{args.name}: {args.verb} requested")
            return 0
        while True:
            view = resources.get(plural, args.name)
            if args.watch and sys.stdout.isatty():
                sys.stdout.write("\033[H\033[2J")
            print(render(view), flush=True)
            if not args.watch or (view.get("status") or {}).get("phase") in TERMINAL:
                return 0
            print()
            time.sleep(args.interval)
    except client.ApiException as error:
        print(f"error: {error.status} {error.reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
