"""The prompt-token floor: enough replicas for the prefill work, whatever is in flight."""

from __future__ import annotations

import pytest

from lmscale.policy import DecisionReason, ScalingHistory, decide

from .builders import make_observation, make_spec

# One replica prefills 10,000 prompt tokens/s at the top of its band; tolerance 10%.
PER_REPLICA = 10_000.0


def test_a_shift_to_long_prompts_scales_up_while_in_flight_stays_on_target() -> None:
    spec = make_spec(prompt_tokens_per_replica=PER_REPLICA)
    # 40 in flight on 4 replicas is on target; 66,000 tokens/s needs 66,000 / 11,000 = 6.
    seen = make_observation(replicas=4, running=40.0, prompt_tokens_per_second=66_000.0)

    decision = decide(spec, seen, ScalingHistory(), now=1000.0)

    assert decision.replicas == 6
    assert decision.reason is DecisionReason.PREFILL_ABOVE_TARGET
    assert "66000 prompt tokens/s" in decision.message


@pytest.mark.parametrize("tokens", [0.0, 44_000.0, None], ids=["idle", "inside-band", "unknown"])
def test_the_floor_never_lowers_or_blocks_the_load_decision(tokens: float | None) -> None:
    spec = make_spec(prompt_tokens_per_replica=PER_REPLICA)
    seen = make_observation(replicas=4, running=80.0, prompt_tokens_per_second=tokens)

    decision = decide(spec, seen, ScalingHistory(), now=1000.0)

    assert decision.replicas == 8  # 80 in flight, target 10
    assert decision.reason is DecisionReason.LOAD_ABOVE_TARGET


def test_without_a_calibrated_rate_there_is_no_floor() -> None:
    seen = make_observation(replicas=4, running=40.0, prompt_tokens_per_second=1e6)

    decision = decide(make_spec(), seen, ScalingHistory(), now=1000.0)

    assert decision.replicas == 4


def test_the_floor_holds_a_scale_down_the_in_flight_count_would_make() -> None:
    spec = make_spec(prompt_tokens_per_replica=PER_REPLICA)
    # 10 in flight would want 1 replica; 55,000 tokens/s still needs 5.
    seen = make_observation(replicas=8, running=10.0, prompt_tokens_per_second=55_000.0)

    decision = decide(spec, seen, ScalingHistory(), now=1000.0)

    assert decision.recommendation == 5


def test_a_non_positive_rate_per_replica_is_rejected() -> None:
    with pytest.raises(ValueError, match="prompt_tokens_per_replica must be positive"):
        make_spec(prompt_tokens_per_replica=0.0)
