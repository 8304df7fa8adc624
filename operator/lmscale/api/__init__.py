"""The LanguageModelDeployment API: pydantic models, the single source of the CRD and validation.

Pure: no Kubernetes client, no kopf. `lmscale.api.crd` generates the CRD from these models;
`lmscale.api.semantic` adds the checks a schema cannot express (it consults the planner).
"""

from lmscale.api.engine import Engine, EngineKind, EnvVar, Resources
from lmscale.api.model import Dtype, Model, ModelShape, ModelSource
from lmscale.api.networking import Ingress, LoadBalancing, Service, ServiceType
from lmscale.api.resource import (
    API_VERSION,
    CRD_NAME,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    VERSION,
    FieldError,
    LanguageModelDeployment,
    field_errors,
    parse_spec,
)
from lmscale.api.scaling import (
    Behavior,
    MissingMetricsAction,
    OnMissingMetrics,
    PolicyType,
    ScaleDownRules,
    ScaleToZero,
    ScaleUpRules,
    Scaling,
    ScalingPolicy,
    SelectPolicy,
)
from lmscale.api.spec import Accelerator, LanguageModelDeploymentSpec, ModelCache, Slo
from lmscale.api.status import (
    Condition,
    ConditionReason,
    ConditionStatus,
    ConditionType,
    Metrics,
    Status,
    find_condition,
    set_condition,
)

__all__ = [
    "API_VERSION",
    "CRD_NAME",
    "GROUP",
    "KIND",
    "PLURAL",
    "SHORT_NAMES",
    "VERSION",
    "Accelerator",
    "Behavior",
    "Condition",
    "ConditionReason",
    "ConditionStatus",
    "ConditionType",
    "Dtype",
    "Engine",
    "EngineKind",
    "EnvVar",
    "FieldError",
    "Ingress",
    "LanguageModelDeployment",
    "LanguageModelDeploymentSpec",
    "LoadBalancing",
    "Metrics",
    "MissingMetricsAction",
    "Model",
    "ModelCache",
    "ModelShape",
    "ModelSource",
    "OnMissingMetrics",
    "PolicyType",
    "Resources",
    "ScaleDownRules",
    "ScaleToZero",
    "ScaleUpRules",
    "Scaling",
    "ScalingPolicy",
    "SelectPolicy",
    "Service",
    "ServiceType",
    "Slo",
    "Status",
    "field_errors",
    "find_condition",
    "parse_spec",
    "set_condition",
]
