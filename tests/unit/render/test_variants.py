"""One Deployment per GPU type: the primary keeps its name and template, each fallback type
gets <name>-<type>, pinned to its nodes, with its own engine arguments, behind one Service."""

from __future__ import annotations

from typing import Any

from tests.unit.render.builders import lmd, planned

from lmscale import render
from lmscale.api import semantic

FALLBACKS = {"model": {"architecture": "llama-3.1-70b", "maxContextLength": 8192},
             "accelerator": {"fallbacks": [{"type": "nvidia-a100-80gb", "gpusPerReplica": 8},
                                           {"type": "nvidia-l40s"}]}}


def _children(spec_patch: dict[str, Any]) -> render.Children:
    resource = lmd(spec_patch)
    resolution = semantic.resolve(resource.spec)
    assert resolution.plan is not None, resolution.message
    return render.render_children(resource, resolution.plan,
                                  fallback_plans=resolution.fallback_plans)


def _args(deployment: dict[str, Any]) -> list[str]:
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_primary_is_rendered_as_without_fallbacks() -> None:
    """No rename and no new label on the primary's template: no rollout of running fleets."""
    resource, plan = planned({"model": FALLBACKS["model"]})
    alone = render.render_deployment(resource, plan)
    assert _children(FALLBACKS).deployment == alone
    assert alone["metadata"]["name"] == "chat"
    assert render.VARIANT_LABEL not in alone["spec"]["template"]["metadata"]["labels"]


def test_each_fallback_type_is_its_own_pinned_deployment() -> None:
    children = _children(FALLBACKS)
    a100, l40s = children.variants
    assert [a100["metadata"]["name"], l40s["metadata"]["name"]] == [
        "chat-nvidia-a100-80gb", "chat-nvidia-l40s"]
    a100_pod = a100["spec"]["template"]["spec"]
    assert a100_pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert l40s["spec"]["template"]["spec"]["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-L40S"}
    limits = a100["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "8"
    # Each type's engine arguments come from its own plan: 4 H100s (auto), 8 A100s.
    tp = [_args(d)[_args(d).index("--tensor-parallel-size") + 1]
          for d in (children.deployment, a100)]
    assert tp == ["4", "8"]
    assert a100["metadata"]["labels"][render.VARIANT_LABEL] == "nvidia-a100-80gb"
    assert a100["spec"]["selector"]["matchLabels"] == {
        "lmscale.dev/deployment": "chat", render.VARIANT_LABEL: "nvidia-a100-80gb"}


def test_the_service_selects_every_type() -> None:
    children = _children(FALLBACKS)
    selector = children.service["spec"]["selector"]
    for deployment in (children.deployment, *children.variants):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()


def test_variants_are_applied_after_the_primary() -> None:
    names = [(m["kind"], m["metadata"]["name"]) for m in _children(FALLBACKS).present()]
    assert names[:3] == [("Deployment", "chat"), ("Deployment", "chat-nvidia-a100-80gb"),
                         ("Deployment", "chat-nvidia-l40s")]


def test_no_fallbacks_no_variants() -> None:
    assert _children({}).variants == ()
