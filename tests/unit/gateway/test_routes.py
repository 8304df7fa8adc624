"""Which model a request is for, and reading --model values."""

from __future__ import annotations

import pytest

from lmscale.gateway import routes
from lmscale.gateway.routes import ModelRoute, RouteError

TABLE = routes.table([
    routes.parse_model("llama=http://10.0.0.1:8000,http://10.0.0.2:8000/@llama.ml.svc,llama"),
    routes.parse_model("qwen=http://qwen-pods:8000"),
])


def test_parse_model_reads_backends_and_hosts() -> None:
    route = TABLE["llama"]
    assert route == ModelRoute(name="llama",
                               backends=("http://10.0.0.1:8000", "http://10.0.0.2:8000"),
                               hosts=frozenset({"llama.ml.svc", "llama"}))
    assert TABLE["qwen"].hosts == frozenset()


@pytest.mark.parametrize("value", [
    pytest.param("llama", id="no-equals"),
    pytest.param("=http://x", id="no-name"),
    pytest.param("llama=", id="no-url"),
    pytest.param("llama=10.0.0.1:8000", id="no-scheme"),
    pytest.param("llama=@host", id="hosts-but-no-url"),
])  # fmt: skip
def test_bad_model_values_say_what_is_expected(value: str) -> None:
    with pytest.raises(RouteError, match="--model"):
        routes.parse_model(value)


def test_duplicate_names_and_hosts_are_refused() -> None:
    with pytest.raises(RouteError, match="twice"):
        routes.table([routes.parse_model("a=http://x"), routes.parse_model("a=http://y")])
    with pytest.raises(RouteError, match="'h'"):
        routes.table([routes.parse_model("a=http://x@h"), routes.parse_model("b=http://y@h")])


RESOLVE = [
    pytest.param("llama.ml.svc:80", "qwen", "llama", id="host-wins-over-body"),
    pytest.param("LLAMA", None, "llama", id="host-case-insensitive"),
    pytest.param("gateway.example.com", "qwen", "qwen", id="body-when-host-unknown"),
    pytest.param("gateway.example.com", "mistral", None, id="unknown-body-model"),
    pytest.param("gateway.example.com", None, None, id="nothing-to-go-by"),
]  # fmt: skip


@pytest.mark.parametrize(("host", "model", "expected"), RESOLVE)
def test_resolve(host: str, model: str | None, expected: str | None) -> None:
    assert routes.resolve(TABLE, host=host, model=model) == expected


def test_a_single_model_takes_requests_that_name_none() -> None:
    single = routes.table([routes.parse_model("only=http://x")])
    assert routes.resolve(single, host="anything", model=None) == "only"
    assert routes.resolve(single, host="anything", model="other") is None


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(b'{"model": "m", "prompt": "x"}', "m", id="json"),
    pytest.param(b'{"prompt": "x"}', None, id="no-field"),
    pytest.param(b'{"model": 3}', None, id="not-a-string"),
    pytest.param(b"not json", None, id="not-json"),
    pytest.param(b"[1]", None, id="not-an-object"),
    pytest.param(b"", None, id="empty"),
])  # fmt: skip
def test_body_model(body: bytes, expected: str | None) -> None:
    assert routes.body_model(body) == expected


def test_parse_model_reads_each_backends_capacity() -> None:
    route = routes.parse_model(
        "llama=http://10.0.0.1:8000;capacity=30,http://10.0.0.2:8000/;capacity=10.5,"
        "http://10.0.0.3:8000@llama")
    assert route.backends == ("http://10.0.0.1:8000", "http://10.0.0.2:8000",
                              "http://10.0.0.3:8000")
    assert route.capacities == (30.0, 10.5, 1.0)
    assert route.hosts == frozenset({"llama"})
    assert routes.parse_model("qwen=http://x,http://y").capacities == ()


@pytest.mark.parametrize("value", [
    pytest.param("llama=http://x;capacity=0", id="zero"),
    pytest.param("llama=http://x;capacity=-3", id="negative"),
    pytest.param("llama=http://x;capacity=lots", id="not-a-number"),
    pytest.param("llama=http://x;capacity=inf", id="infinite"),
    pytest.param("llama=http://x;capacity=nan", id="nan"),
])  # fmt: skip
def test_a_bad_capacity_is_refused_with_the_backend_named(value: str) -> None:
    with pytest.raises(RouteError, match="capacity .* of http://x must be a number above 0"):
        routes.parse_model(value)


def test_a_route_has_one_capacity_per_backend() -> None:
    with pytest.raises(RouteError, match="2 backends but 1 capacities"):
        ModelRoute(name="m", backends=("http://a", "http://b"), capacities=(3.0,))
