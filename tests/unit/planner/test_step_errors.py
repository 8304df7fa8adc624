"""The step model's error against every committed H200 measurement, printed per group, and
against published engine measurements of other model sizes (docs/calibration/published-*.json).

Run with `-s` to see the tables. Goals (issue: median within 10%, worst within 25% for every
group); the previous single-share model (bandwidth 0.84, 48 us a layer, no per-matrix
cost) is printed beside it as the baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

from lmscale.planner import performance, step_errors

CALIBRATION = Path(__file__).resolve().parents[3] / "docs" / "calibration"
BASELINE = performance.Efficiency(bandwidth=0.84, matrix_overhead_s=0.0, layer_overhead_s=48e-6)


def _groups(efficiency: performance.Efficiency) -> list[step_errors.Group]:
    micro = json.loads((CALIBRATION / "h200-microbench.json").read_text())
    steps = [json.loads(path.read_text())
             for path in sorted(CALIBRATION.glob("h200-decode-step*.json"))]
    return step_errors.groups(micro, steps, efficiency)


def test_step_model_error_per_measured_group() -> None:
    now, before = _groups(performance.DEFAULT_EFFICIENCY), _groups(BASELINE)
    print("\nstep model vs committed H200 measurements (model / measured - 1)")
    print(f"{'group':<60} {'n':>3} {'median':>7} {'worst':>7} | baseline median, worst")
    for group, old in zip(now, before, strict=True):
        print(f"{group.name:<60} {len(group.errors):>3} {group.median:>7.1%} "
              f"{group.worst:>+7.1%} | {old.median:.1%}, {old.worst:+.1%}")
        for point, error, why in group.excluded:
            print(f"{'':<4}left out: {point}: {error:+.1%} ({why})")
    for group in now:
        assert group.median <= 0.10 and abs(group.worst) <= 0.25, group


def test_small_matrices_are_no_longer_underestimated() -> None:
    """A 34 MB matrix (a 1B-3B layer's, or an 8B one split four ways) streams at a smaller
    share than a 134 MB one; one share for all of them missed it by a third."""
    now, before = _groups(performance.DEFAULT_EFFICIENCY), _groups(BASELINE)
    small_now = next(g for g in now if g.name.startswith("GEMV 4096 x 4096"))
    small_before = next(g for g in before if g.name.startswith("GEMV 4096 x 4096"))
    assert small_before.median > 0.30 and small_now.median < 0.10


def _published(efficiency: performance.Efficiency) -> list[step_errors.Group]:
    found = []
    for path in sorted(CALIBRATION.glob("published-*.json")):
        found += step_errors.published(json.loads(path.read_text()), efficiency)
    return found


def test_step_model_error_against_published_measurements() -> None:
    """Reports, per model shape, how far the H200-fitted model is from published whole-engine
    figures on H100s; asserts only what holds today (issue 17: median 10%, worst 25%)."""
    now, before = _published(performance.DEFAULT_EFFICIENCY), _published(BASELINE)
    print("\nstep model vs published engine measurements (model / published - 1)")
    print(f"{'group':<72} {'n':>3} {'median':>7} {'worst':>7} | baseline median, worst")
    for group, old in zip(now, before, strict=True):
        print(f"{group.name:<72} {len(group.errors):>3} {group.median:>7.1%} "
              f"{group.worst:>+7.1%} | {old.median:.1%}, {old.worst:+.1%}")
    by_name = {group.name: group for group in now}
    decode = [group for name, group in by_name.items() if name.endswith(" ITL")]
    assert len(decode) >= 2
    # Decode steps of 70B-class models on two H100s hold the goal.
    for group in decode:
        assert group.median <= 0.10 and abs(group.worst) <= 0.25, group
    # Time to first token does not: TTFT also holds the request's way through the server and
    # one published sweep is not monotone in the prompt length (see the README).
    ttft = [group for name, group in by_name.items() if name.endswith(" TTFT")]
    assert ttft and all(abs(group.worst) < 1.0 for group in ttft)


def _per_size(efficiency: performance.Efficiency) -> list[step_errors.SizeSummary]:
    return step_errors.by_size(_groups(efficiency) + _published(efficiency))


def test_step_model_error_per_model_size() -> None:
    """The goal is stated per model size (issue 17: median within 10%, worst within 25% on
    every size): every committed measurement of a whole model, H200 runs and published engine
    figures alike, pooled by size class and kind, with the sizes nothing covers yet."""
    now = _per_size(performance.DEFAULT_EFFICIENCY)
    print("\nstep model per model size, every committed measurement (model / measured - 1)")
    print(f"{'size':<8} {'what':<20} {'n':>3} {'median':>7} {'worst':>7}  goal  from")
    for summary in now:
        print(f"{summary.size:<8} {summary.kind:<20} {len(summary.errors):>3} "
              f"{summary.median:>7.1%} {summary.worst:>+7.1%}  "
              f"{'met ' if summary.meets_goal else 'not '}  {'; '.join(summary.sources)}")
    missing = step_errors.unmeasured_sizes(now)
    print(f"no measurement: {', '.join(missing)}")
    found = {(summary.size, summary.kind): summary for summary in now}
    # What holds today: 8B steps and prefills on the H200, 70B-class steps on two H100s.
    for key in (("7B-8B", step_errors.DECODE), ("7B-8B", step_errors.PREFILL),
                ("70B-72B", step_errors.DECODE)):
        assert found[key].meets_goal, found[key]
    # Sizes without a measurement are reported, not silently passed.
    assert "1B" in missing and "32B-47B" in missing


def test_sizes_pool_groups_of_one_class_and_kind() -> None:
    groups = [
        step_errors.Group("a", (0.05, -0.02), model="llama-3.1-70b", kind=step_errors.DECODE),
        step_errors.Group("b", (0.30,), model="qwen2.5-72b", kind=step_errors.DECODE),
        step_errors.Group("c", (0.01,), model="llama-3.2-1b", kind=step_errors.PREFILL),
        step_errors.Group("GEMV", (0.5,)),  # a single matrix: no model size
    ]
    summaries = step_errors.by_size(groups)
    assert [(s.size, s.kind) for s in summaries] == [("1B", step_errors.PREFILL),
                                                     ("70B-72B", step_errors.DECODE)]
    seventy = summaries[1]
    assert seventy.errors == (0.05, -0.02, 0.30) and seventy.sources == ("a", "b")
    assert seventy.median == 0.05 and seventy.worst == 0.30 and not seventy.meets_goal
    assert step_errors.size_class("qwen2.5-32b") == "32B-47B"
    assert step_errors.size_class("llama-3.2-3b") == "3B"
