"""A self-hosted route's price per token: what its GPUs cost per hour over the tokens it served.

vLLM counts prompt and generated tokens (``vllm:prompt_tokens_total``,
``vllm:generation_tokens_total``); their rate over a window is the model's measured throughput.
One price applies to input and output tokens alike, since both take the same GPUs' time.
"""

from __future__ import annotations

from ..api.llmdeployment import LLMDeploymentSpec
from ..api.llmgateway import PricingSpec, Route


def gpu_hour_price(route: Route, pricing: PricingSpec, deployment: LLMDeploymentSpec) -> float | None:
    """USD per GPU-hour: the route's own, else its GPU product's, else the gateway's default."""
    if route.gpu_hour_price is not None:
        return float(route.gpu_hour_price)
    product = deployment.resources.gpu_product
    if product is not None and product in pricing.gpu_products:
        return float(pricing.gpu_products[product])
    return float(pricing.gpu_hour_price) if pricing.gpu_hour_price is not None else None


def gpus(deployment: LLMDeploymentSpec) -> int:
    """GPUs the deployment holds; a CPU-served model (0 GPUs) is priced as one."""
    return max(1, deployment.gpus_per_replica()) * max(1, deployment.replicas)


def throughput_query(served_model: str, window: str) -> str:
    """Tokens per second the model served over ``window``, both directions."""
    selector = f'{{model_name="{served_model}"}}'
    counters = ("vllm:prompt_tokens_total", "vllm:generation_tokens_total")
    return " + ".join(f"(sum(rate({name}{selector}[{window}])) or vector(0))" for name in counters)


def price_per_token(hour_price: float, gpu_count: int, tokens_per_second: float) -> float | None:
    """USD per token; None when nothing was served (the price is undefined, not infinite)."""
    if tokens_per_second <= 0:
        return None
    return hour_price * gpu_count / (tokens_per_second * 3600.0)
