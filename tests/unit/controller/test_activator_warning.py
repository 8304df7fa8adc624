"""A spec that needs an activator the chart did not install is told so, field and fix."""

from __future__ import annotations

from typing import Any

import pytest

from lmscale.api import LanguageModelDeployment, parse_spec
from lmscale.controller.desired import activator_warning


def lmd(*, scaling: dict[str, Any] | None = None, routing: dict[str, Any] | None = None
        ) -> LanguageModelDeployment:
    spec = {"model": {"name": "m", "architecture": "llama-3.1-8b", "maxContextLength": 8192},
            "accelerator": {"type": "nvidia-h100-80gb"},
            "scaling": scaling or {"minReplicas": 2, "maxReplicas": 4},
            "routing": routing or {}}
    parsed = parse_spec(spec)
    assert not isinstance(parsed, list), parsed
    return LanguageModelDeployment(metadata={"name": "chat"}, spec=parsed)


ZERO = {"minReplicas": 2, "maxReplicas": 4, "scaleToZero": {"enabled": True}}
POOL = {"mode": "inferencePool", "parentRefs": [{"name": "gw"}]}


@pytest.mark.parametrize(("resource", "says"), [
    pytest.param(lmd(scaling=ZERO), ["spec.scaling.scaleToZero.enabled",
                                     "kept at spec.scaling.minReplicas (2)",
                                     "activator.enabled=true"], id="scale-to-zero"),
    pytest.param(lmd(routing={"activator": "always"}),
                 ["spec.routing.activator is always", "activator.enabled=true"], id="always"),
])
def test_without_an_activator_the_warning_names_the_field_and_the_fix(
        resource: LanguageModelDeployment, says: list[str]) -> None:
    message = activator_warning(resource, activator=False)
    assert message is not None
    for words in says:
        assert words in message
    assert activator_warning(resource, activator=True) is None


def test_an_inference_pool_cannot_scale_to_zero_even_with_an_activator() -> None:
    message = activator_warning(lmd(scaling=ZERO, routing=POOL), activator=True)
    assert message is not None
    assert "routing.mode inferencePool" in message and "ingress or gateway" in message


def test_nothing_to_say_when_the_spec_needs_no_activator() -> None:
    assert activator_warning(lmd(), activator=False) is None
    disabled = {"enabled": False, "scaleToZero": {"enabled": True}}
    assert activator_warning(lmd(scaling=disabled), activator=False) is None
