"""Building blocks shared by the three custom resources.

Every model here doubles as the source of the CRD schema (see ``llmops_operator.crdgen``), so the
constraints written on a field are enforced twice: by the API server on ``kubectl apply`` and by
pydantic when the operator reads an object.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

# Strings rather than floats in spec (Kubernetes API conventions).
Duration = Annotated[
    str,
    Field(
        pattern=r"^([0-9]+(ms|s|m|h))+$",
        max_length=32,
        description="A duration such as 90s, 5m or 1h30m.",
    ),
]
# At least one component with a non-zero count: a period or a window of 0s would mean "always" or
# "nothing", never what was meant.
PositiveDuration = Annotated[
    str,
    Field(
        pattern=r"^([0-9]+(ms|s|m|h))*0*[1-9][0-9]*(ms|s|m|h)([0-9]+(ms|s|m|h))*$",
        max_length=32,
        description="A positive duration such as 90s, 5m or 1h30m.",
    ),
]
Quantity = Annotated[
    str,
    Field(
        pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P)?$",
        max_length=32,
        description="A Kubernetes resource quantity such as 500m, 16Gi or 4.",
    ),
]
Decimal = Annotated[
    str,
    Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", max_length=32, description="A decimal number as a string."),
]
Fraction = Annotated[
    str,
    Field(pattern=r"^(0(\.[0-9]+)?|1(\.0+)?)$", max_length=16, description="A number in 0..1 as a string."),
]
Probability = Annotated[
    str,
    Field(
        pattern=r"^0\.[0-9]*[1-9][0-9]*$",
        max_length=32,
        description="A probability strictly between 0 and 1, as a string such as 0.05.",
    ),
]
DNSLabel = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
ResourceName = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length=253)
]
IntOrString = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]


class K8sModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", serialize_by_alias=True
    )


class StatusModel(BaseModel):
    """Status is written by the operator only; tolerate fields a newer operator added."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", serialize_by_alias=True
    )


class Condition(StatusModel):
    """Shaped like metav1.Condition."""

    type: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=316)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    observed_generation: int = Field(default=0, ge=0)
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})


ConditionList = Annotated[
    list[Condition],
    Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]


def cel_rules(*rules: JsonDict) -> ConfigDict:
    """Model config carrying CEL rules (x-kubernetes-validations) for the model's schema node."""
    config = ConfigDict(**K8sModel.model_config)
    config["json_schema_extra"] = {"x-kubernetes-validations": list(rules)}
    return config


def exactly_one_of(owner: str, *fields: str) -> JsonDict:
    present = ", ".join(f"has(self.{field})" for field in fields)
    names = ", ".join(fields[:-1]) + f" or {fields[-1]}"
    return {
        "rule": f"[{present}].filter(x, x).size() == 1",
        "message": f"{owner} sets exactly one of {names}",
    }


class LocalObjectReference(K8sModel):
    name: ResourceName


class MLflowArtifact(K8sModel):
    run_id: str = Field(pattern=r"^[a-zA-Z0-9]+$", max_length=64)
    path: str = Field(max_length=1024)


class ConfigMapKey(K8sModel):
    name: ResourceName
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class SecretKeyReference(K8sModel):
    """A key of a Secret in the resource's namespace: credentials are only ever referenced."""

    name: ResourceName
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class EnvVar(K8sModel):
    """A container environment variable; ``valueFrom`` takes any core/v1 EnvVarSource."""

    name: str = Field(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", max_length=256)
    value: str | None = None
    value_from: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )


class PrometheusEndpoint(K8sModel):
    """Overrides the operator-wide Prometheus address for one resource."""

    address: str = Field(pattern=r"^https?://", max_length=2048)


class KindInfo(BaseModel):
    """What the CRD generator needs besides the schema."""

    kind: str
    plural: str
    singular: str
    short_names: list[str]
    printer_columns: list[dict[str, Any]]
    scale: dict[str, str] | None = None
    schema_rules: list[dict[str, str]] = Field(default_factory=list)
    name_max_length: int = Field(default=63, description="The longest metadata.name its children allow.")
    name_limited_by: str = "it is a label value on the objects made for it, at most 63 characters"


class Resource(K8sModel):
    """Base for the top-level kinds; ``kind_info`` drives CRD generation."""

    kind_info: ClassVar[KindInfo]

    api_version: str = "llmops.dev/v1alpha1"
    kind: str
    metadata: dict[str, Any] = Field(default_factory=dict)


def age_column() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def condition_column(name: str, condition: str, field: str = "status", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{condition}")].{field}',
    }
    if priority:
        column["priority"] = priority
    return column


def validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{path}: {first['msg']}{more}"
