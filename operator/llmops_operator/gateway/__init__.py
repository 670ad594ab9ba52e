"""The LLMGateway's parts that are not rendering: the hooks its proxy runs (proxy_hooks, shipped in
the ConfigMap, never imported by the operator) and the self-hosted price per token (pricing)."""
