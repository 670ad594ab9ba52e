"""kopf handlers: thin glue from Kubernetes events to the pure modules. Importing registers them."""

from . import lifecycle, observe

__all__ = ["lifecycle", "observe"]
