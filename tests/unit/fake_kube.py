"""A recording stand-in for kube.Kube: objects in a dict, every write in a list, no HTTP.

It overrides the verbs kube.py offers (get, select, apply, replace, merge_patch, create, delete,
post_event, crd_exists); the helpers built on them (scale, patch_status, write_status) run as
they do against a cluster. A controller that builds an API path itself reaches ``request`` and
fails the test: kube.py is the only place that knows paths.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from llmops_operator.kube import Kube

Key = tuple[str, str, str]  # kind, namespace, name


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386): maps merge, None removes, anything else replaces."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class FakeKube(Kube):
    def __init__(
        self, *objects: dict[str, Any], crds: tuple[str, ...] = (), refuse: dict[str, Exception] | None = None
    ) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.refuse = dict(refuse or {})  # kind -> what the API server answers a create of it
        self.writes: list[tuple[str, str, str]] = []  # (verb, kind, name)
        self.events: list[tuple[str, str, str]] = []  # (type, reason, message)
        self.crds = set(crds)
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)
        for obj in objects:
            self.put(obj)

    # -- setting the scene ------------------------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` as the API server would hold it (a uid, a generation, a resourceVersion)."""
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[self._key(stored)] = stored
        return copy.deepcopy(stored)

    def stored(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.objects[(kind, namespace, name)]

    def status_of(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return dict(self.objects[(kind, namespace, name)].get("status") or {})

    def verbs(self, kind: str | None = None) -> list[str]:
        return [verb for verb, written_kind, _ in self.writes if kind is None or written_kind == kind]

    @staticmethod
    def _key(obj: dict[str, Any]) -> Key:
        meta = obj["metadata"]
        return obj["kind"], meta.get("namespace", ""), meta["name"]

    # -- the verbs of kube.py ---------------------------------------------------------------------

    def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{method} {path}: an API path built outside kube.py")

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("apply", obj["kind"], obj["metadata"]["name"]))
        live = self.objects.get(self._key(obj))
        if live is None:
            return self.put(obj)
        merged = _merge(live, obj)
        if merged.get("spec") != live.get("spec"):
            merged["metadata"]["generation"] = int(live["metadata"].get("generation") or 1) + 1
        return self.put(merged)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("replace", obj["kind"], obj["metadata"]["name"]))
        return self.put(obj)

    def merge_patch(
        self, kind: str, namespace: str, name: str, changes: dict[str, Any], sub: str | None = None
    ) -> dict[str, Any]:
        self.writes.append((sub or "patch", kind, name))
        live = self.objects[(kind, namespace, name)]
        merged = _merge(live, changes)
        if sub is None and merged.get("spec") != live.get("spec"):
            merged["metadata"]["generation"] = int(live["metadata"].get("generation") or 1) + 1
        return self.put(merged)

    def select(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        wanted = dict(term.split("=", 1) for term in label_selector.split(","))
        return [
            copy.deepcopy(obj)
            for (found_kind, found_namespace, _), obj in self.objects.items()
            if found_kind == kind
            and found_namespace == namespace
            and wanted.items() <= (obj["metadata"].get("labels") or {}).items()
        ]

    def create(self, obj: dict[str, Any]) -> bool:
        if obj["kind"] in self.refuse:
            raise self.refuse[obj["kind"]]
        if self._key(obj) in self.objects:
            return False
        self.writes.append(("create", obj["kind"], obj["metadata"]["name"]))
        self.put(obj)
        return True

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        self.writes.append(("delete", kind, name))
        return self.objects.pop((kind, namespace, name), None) is not None

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def crd_exists(self, name: str) -> bool:
        return name in self.crds
