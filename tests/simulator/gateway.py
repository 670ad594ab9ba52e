"""How a gateway routes one request by an HTTPRoute, for the load generator: the matching rule
(most header matches first, then rule order, as Gateway API's precedence has it for routes that
match every path), a backend by weight, and the RequestMirror filters that copy the request."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Routing:
    backend: str  # the backendRef name the answer comes from; "" when no rule matches
    rule: str  # the rule's name, or its index
    mirrors: list[str] = field(default_factory=list)  # backendRef names the request is copied to


def _header_matches(match: dict[str, Any], headers: dict[str, str]) -> bool:
    lowered = {name.lower(): value for name, value in headers.items()}
    for wanted in match.get("headers") or []:
        value = lowered.get(str(wanted["name"]).lower())
        if value is None:
            return False
        if wanted.get("type", "Exact") == "RegularExpression":
            if re.fullmatch(str(wanted["value"]), value) is None:
                return False
        elif value != wanted["value"]:
            return False
    return True


def _mirrored(item: dict[str, Any], rng: random.Random) -> bool:
    mirror = item.get("requestMirror") or {}
    if "percent" in mirror:
        share = float(mirror["percent"]) / 100
    elif "fraction" in mirror:
        share = float(mirror["fraction"]["numerator"]) / float(mirror["fraction"].get("denominator", 100))
    else:
        share = 1.0
    return rng.random() < share


def route_request(route: dict[str, Any], headers: dict[str, str], rng: random.Random) -> Routing:
    candidates = []
    for index, rule in enumerate(route.get("spec", {}).get("rules") or []):
        for match in rule.get("matches") or [{}]:
            if _header_matches(match, headers):
                candidates.append((-len(match.get("headers") or []), index, rule))
    if not candidates:
        return Routing("", "")
    _, index, rule = min(candidates, key=lambda c: (c[0], c[1]))
    refs = rule.get("backendRefs") or []
    weights = [int(ref.get("weight", 1)) for ref in refs]
    backend = ""
    if refs and sum(weights) > 0:
        backend = str(rng.choices(refs, weights=weights)[0]["name"])
    mirrors = [
        str(item["requestMirror"]["backendRef"]["name"])
        for item in rule.get("filters") or []
        if item.get("type") == "RequestMirror" and _mirrored(item, rng)
    ]
    return Routing(backend, str(rule.get("name", index)), mirrors)
