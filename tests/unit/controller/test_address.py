"""status.url: the Ingress host, else the Service's cluster DNS name and port."""

from __future__ import annotations

from typing import Any

import pytest

from lmscale.api import LanguageModelDeployment, parse_spec
from lmscale.controller import address


def _lmd(**changes: Any) -> LanguageModelDeployment:
    spec = parse_spec({"model": {"name": "m", "architecture": "llama-3.1-8b"},
                       "engine": {"kind": "vllm"}, "accelerator": {"type": "nvidia-l4"},
                       "slo": {"ttftP95Ms": 500}, **changes})
    assert not isinstance(spec, list), spec
    return LanguageModelDeployment(metadata={"name": "chat", "namespace": "team-a"}, spec=spec)


@pytest.mark.parametrize(("changes", "url"), [
    pytest.param({}, "http://chat.team-a.svc.cluster.local:80", id="service"),
    pytest.param({"service": {"port": 8080}}, "http://chat.team-a.svc.cluster.local:8080",
                 id="service-port"),
    pytest.param({"ingress": {"enabled": True, "host": "chat.example.com"}},
                 "http://chat.example.com", id="ingress"),
    pytest.param({"ingress": {"enabled": True, "host": "chat.example.com",
                              "tlsSecretName": "tls", "paths": ["/v1/"]}},
                 "https://chat.example.com/v1", id="ingress-tls-path"),
    pytest.param({"ingress": {"enabled": False, "host": "chat.example.com"}},
                 "http://chat.team-a.svc.cluster.local:80", id="ingress-disabled"),
    pytest.param({"ingress": {"enabled": True, "host": "*.example.com"}},
                 "http://chat.team-a.svc.cluster.local:80", id="wildcard-host"),
])
def test_url(changes: dict[str, Any], url: str) -> None:
    assert address.url(_lmd(**changes)) == url
