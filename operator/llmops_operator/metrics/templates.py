"""Query templates with named variables: ``{{name}}`` substituted, an unknown name an error."""

from __future__ import annotations

import re
from collections.abc import Mapping

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class TemplateError(ValueError):
    """A query names a variable the operator does not provide."""


def render_query(template: str, variables: Mapping[str, str]) -> str:
    """Substitute ``{{name}}``; a name without a value is an error, never an empty string."""
    missing = sorted({name for name in _VARIABLE.findall(template) if name not in variables})
    if missing:
        known = ", ".join(f"{{{{{name}}}}}" for name in sorted(variables))
        raise TemplateError(f"unknown variable {{{{{missing[0]}}}}} (known: {known})")
    return _VARIABLE.sub(lambda match: variables[match.group(1)], template)
