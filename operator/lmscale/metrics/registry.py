"""The one list of engine kinds and their metric sources (KEDA's scalers_builder, for engines)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from lmscale.metrics.sglang import SglangSource
from lmscale.metrics.source import EngineSource
from lmscale.metrics.tgi import TgiSource
from lmscale.metrics.vllm import VllmSource

SOURCES: Mapping[str, EngineSource] = MappingProxyType(
    {source.kind: source for source in (VllmSource(), TgiSource(), SglangSource())}
)


class UnknownEngineError(KeyError):
    """An engine kind without a metric source."""


def source_for(kind: str) -> EngineSource:
    try:
        return SOURCES[kind]
    except KeyError:
        raise UnknownEngineError(
            f"no metric source for engine {kind!r}; known: {', '.join(SOURCES)}"
        ) from None


def kinds() -> tuple[str, ...]:
    return tuple(SOURCES)
