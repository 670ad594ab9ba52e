"""Runs the Argo CD health checks in manifests/argocd as Argo CD does: the object as the global
``obj`` of a Lua 5.1 chunk (Argo CD embeds gopher-lua, a Lua 5.1) that returns ``{status, message}``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lupa import lua51

CUSTOMIZATIONS = Path(__file__).resolve().parents[1] / "manifests" / "argocd" / "resource_customizations"


def health(obj: dict[str, Any]) -> dict[str, str]:
    group = obj["apiVersion"].split("/")[0]
    script = (CUSTOMIZATIONS / group / obj["kind"] / "health.lua").read_text()
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    return {key: str(value) for key, value in dict(result).items()}
