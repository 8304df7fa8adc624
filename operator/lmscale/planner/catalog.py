"""Model and GPU catalogs: the published figures every other planner module computes from.

The data lives in `planner/data/models.yaml` and `planner/data/gpus.yaml` (each entry cites
its source). Users add or override entries with a mapping of the same shape: the edges
(`lmscale plan --catalog FILE`, `LMSCALE_CATALOG_DIR`, a ConfigMap) read the file and pass
the parsed mapping to `Catalog.extended`; this module reads only its packaged data.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.resources
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import yaml

MIB = 1 << 20
GIB = 1 << 30

MlpKind = Literal["gated", "plain"]
NormKind = Literal["rms", "layer"]


class UnknownKeyError(ValueError):
    """A model or GPU key that the catalog does not hold; the message names the closest keys."""

    def __init__(self, kind: str, key: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"
        super().__init__(f"unknown {kind} {key!r}; {hint}")
        self.kind = kind
        self.key = key
        self.close_matches = tuple(close)


class CatalogError(ValueError):
    """A catalog entry that is missing a field or has one of the wrong type."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelArchitecture:
    """A decoder-only transformer's shape, as its config.json gives it."""

    key: str
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_context: int
    hf_id: str = ""
    source: str = ""
    tied_embeddings: bool = False
    mlp: MlpKind = "gated"
    norm: NormKind = "rms"
    qkv_bias: bool = False
    linear_bias: bool = False
    learned_positions: bool = False
    experts: int = 1
    experts_per_token: int = 1
    published_parameters: float | None = None
    published_active_parameters: float | None = None

    def __post_init__(self) -> None:
        for name in ("layers", "hidden_size", "attention_heads", "kv_heads", "head_dim",
                     "intermediate_size", "vocab_size", "max_context", "experts",
                     "experts_per_token"):
            if getattr(self, name) < 1:
                raise CatalogError(f"model {self.key!r}: {name} must be at least 1")
        if self.attention_heads % self.kv_heads:
            raise CatalogError(
                f"model {self.key!r}: attention_heads ({self.attention_heads}) must be a "
                f"multiple of kv_heads ({self.kv_heads})"
            )
        if self.experts_per_token > self.experts:
            raise CatalogError(f"model {self.key!r}: experts_per_token exceeds experts")

    @property
    def is_moe(self) -> bool:
        return self.experts > 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class GpuType:
    """One GPU model: datasheet capacity and rates, its node label and a default price."""

    key: str
    product_label: str
    memory_mib: int
    bandwidth_gbps: float
    bf16_tflops: float
    fp16_tflops: float
    fp8_tflops: float
    interconnect: str
    interconnect_gbps: float
    gpus_per_node: int
    price_per_hour: float
    supported_dtypes: tuple[str, ...] = ("bfloat16", "float16", "float8", "int4")
    name: str = ""
    source: str = ""

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MIB

    @property
    def bandwidth_bytes_per_second(self) -> float:
        return self.bandwidth_gbps * 1e9

    @property
    def interconnect_bytes_per_second(self) -> float:
        return self.interconnect_gbps * 1e9

    def with_price(self, price_per_hour: float) -> GpuType:
        """The same GPU at a user's negotiated price."""
        return dataclasses.replace(self, price_per_hour=price_per_hour)


@dataclasses.dataclass(frozen=True)
class Catalog:
    """Models and GPUs by key; immutable, so an extended catalog is a new value."""

    models: Mapping[str, ModelArchitecture]
    gpus: Mapping[str, GpuType]

    def model(self, key: str) -> ModelArchitecture:
        try:
            return self.models[key]
        except KeyError:
            raise UnknownKeyError("model", key, self.models) from None

    def gpu(self, key: str) -> GpuType:
        try:
            return self.gpus[key]
        except KeyError:
            raise UnknownKeyError("GPU", key, self.gpus) from None

    def extended(self, data: Mapping[str, Any]) -> Catalog:
        """This catalog plus a user's entries: `{models: {key: {...}}, gpus: {key: {...}}}`.

        A user entry replaces a packaged one field by field, so overriding a GPU's price
        needs only `gpus: {nvidia-h100-80gb: {price_per_hour: 2.1}}`.
        """
        unknown = set(data) - {"models", "gpus"}
        if unknown:
            raise CatalogError(f"catalog file: unknown sections {sorted(unknown)}; "
                               "expected models and gpus")
        models = dict(self.models)
        for key, entry in (data.get("models") or {}).items():
            base = dataclasses.asdict(models[key]) if key in models else {}
            models[key] = model_from_dict(str(key), {**base, **_mapping(entry, key)})
        gpus = dict(self.gpus)
        for key, entry in (data.get("gpus") or {}).items():
            base = dataclasses.asdict(gpus[key]) if key in gpus else {}
            gpus[key] = gpu_from_dict(str(key), {**base, **_mapping(entry, key)})
        return Catalog(models=models, gpus=gpus)


def _mapping(entry: object, key: object) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise CatalogError(f"catalog entry {key!r} must be a mapping, not {type(entry).__name__}")
    return dict(entry)


def _build(cls: type[Any], key: str, entry: Mapping[str, Any], kind: str) -> Any:
    """Build a dataclass from a YAML mapping, naming the bad field when it is wrong."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {name: value for name, value in entry.items() if name != "key"}
    unknown = set(values) - set(fields)
    if unknown:
        raise CatalogError(f"{kind} {key!r}: unknown fields {sorted(unknown)}")
    converted: dict[str, Any] = {}
    for name, value in values.items():
        kind_of = str(fields[name].type)
        try:
            if kind_of == "int":
                converted[name] = int(float(value))  # YAML reads 1e9 as a string
            elif kind_of.startswith("float"):
                converted[name] = None if value is None else float(value)
            elif kind_of == "bool":
                converted[name] = bool(value)
            elif kind_of.startswith("tuple"):
                converted[name] = tuple(str(item) for item in value)
            else:
                converted[name] = value if value is None else str(value)
        except (TypeError, ValueError) as error:
            raise CatalogError(f"{kind} {key!r}: field {name}={value!r}: {error}") from None
    try:
        return cls(key=key, **converted)
    except TypeError as error:
        raise CatalogError(f"{kind} {key!r}: {error}") from None


def model_from_dict(key: str, entry: Mapping[str, Any]) -> ModelArchitecture:
    """A model from a catalog mapping or a LanguageModelDeployment's explicit `shape:`."""
    model: ModelArchitecture = _build(ModelArchitecture, key, entry, "model")
    if model.mlp not in ("gated", "plain") or model.norm not in ("rms", "layer"):
        raise CatalogError(f"model {key!r}: mlp must be gated|plain and norm rms|layer")
    return model


def gpu_from_dict(key: str, entry: Mapping[str, Any]) -> GpuType:
    gpu: GpuType = _build(GpuType, key, entry, "GPU")
    return gpu


def _load_packaged(name: str) -> dict[str, Any]:
    text = importlib.resources.files("lmscale.planner").joinpath("data", name).read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise CatalogError(f"packaged catalog {name} is not a mapping")
    return data


@functools.cache
def default() -> Catalog:
    """The packaged catalog, parsed once."""
    models = {str(k): model_from_dict(str(k), v) for k, v in _load_packaged("models.yaml").items()}
    gpus = {str(k): gpu_from_dict(str(k), v) for k, v in _load_packaged("gpus.yaml").items()}
    return Catalog(models=models, gpus=gpus)


def model(key: str) -> ModelArchitecture:
    """A packaged model by key; `UnknownKeyError` names the closest keys."""
    return default().model(key)


def gpu(key: str) -> GpuType:
    """A packaged GPU by key; `UnknownKeyError` names the closest keys."""
    return default().gpu(key)


def models() -> tuple[ModelArchitecture, ...]:
    return tuple(default().models.values())


def gpus() -> tuple[GpuType, ...]:
    return tuple(default().gpus.values())
