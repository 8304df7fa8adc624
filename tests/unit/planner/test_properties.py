"""Properties that hold for every catalog model and GPU, checked with hypothesis."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lmscale.planner import catalog, parallelism, performance, plan, weights

MODELS = st.sampled_from(sorted(catalog.default().models))
GPUS = st.sampled_from(sorted(k for k in catalog.default().gpus if k != "nvidia-t4"))
FAST = settings(max_examples=40, deadline=None)


@FAST
@given(model=MODELS, gpu=GPUS, context=st.integers(min_value=16, max_value=1024))
def test_more_gpus_never_lower_capacity(model: str, gpu: str, context: int) -> None:
    arch, card = catalog.model(model), catalog.gpu(gpu)
    capacities, concurrency = [], []
    for tp in parallelism.valid_tp_degrees(arch, card):
        result = plan.plan_replica(arch, card, context=context, gpus_per_replica=tp)
        capacities.append(result.kv_capacity_tokens)
        concurrency.append(result.max_concurrent_sequences)
    assert capacities == sorted(capacities)
    assert concurrency == sorted(concurrency)


@FAST
@given(model=MODELS, gpu=GPUS,
       contexts=st.lists(st.integers(min_value=1, max_value=32768), min_size=2, max_size=5))
def test_longer_context_never_raises_concurrency(model: str, gpu: str, contexts: list) -> None:
    arch = catalog.model(model)
    contexts = sorted(min(c, arch.max_context) for c in contexts)
    tp = parallelism.valid_tp_degrees(arch, catalog.gpu(gpu))[-1]
    concurrency = [plan.plan_replica(arch, gpu, context=c, gpus_per_replica=tp)
                   .max_concurrent_sequences for c in contexts]
    assert concurrency == sorted(concurrency, reverse=True)


@FAST
@given(model=MODELS)
def test_narrower_dtypes_never_weigh_more(model: str) -> None:
    arch = catalog.model(model)
    sizes = [weights.weight_bytes(arch, d) for d in ("bfloat16", "float8", "int4")]
    assert sizes == sorted(sizes, reverse=True)


@FAST
@given(model=MODELS, gpu=GPUS, prefill=st.integers(0, 16384), decode=st.integers(0, 1024),
       kv=st.integers(0, 2_000_000), extra=st.integers(1, 4096))
def test_step_time_never_falls_as_work_grows(
    model: str, gpu: str, prefill: int, decode: int, kv: int, extra: int
) -> None:
    result = plan.plan_replica(model, gpu, context=min(1024, catalog.model(model).max_context))
    if not result.fits:
        return
    perf = performance.replica_performance(result)
    base = perf.step_seconds(prefill_tokens=prefill, decode_seqs=decode, kv_tokens=kv)
    assert perf.step_seconds(prefill_tokens=prefill + extra, decode_seqs=decode,
                             kv_tokens=kv) >= base
    assert perf.step_seconds(prefill_tokens=prefill, decode_seqs=decode + extra,
                             kv_tokens=kv) >= base
    assert perf.step_seconds(prefill_tokens=prefill, decode_seqs=decode,
                             kv_tokens=kv + extra) >= base
