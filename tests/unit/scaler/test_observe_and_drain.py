"""From pods and metrics to the policy's Observation; which pods a scale-down removes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lmscale.controller.pods import PodInfo
from lmscale.metrics.results import DeploymentMetrics
from lmscale.scaler import drain, observe

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def pod(name: str, *, age: float, ready_for: float | None = None,
        unschedulable: bool = False, terminating: bool = False, cost: int | None = None
        ) -> PodInfo:
    created = NOW - timedelta(seconds=age)
    return PodInfo(namespace="ns", name=name, created=created, ready=ready_for is not None,
                   ready_since=NOW - timedelta(seconds=ready_for) if ready_for is not None
                   else None, terminating=terminating,
                   unschedulable_message="no node" if unschedulable else None,
                   crash_looping=False, deletion_cost=cost)


def test_observation_counts_ready_starting_and_learns_startup() -> None:
    pods = [pod("ready-long-ago", age=600, ready_for=500),
            pod("ready-just-now", age=95, ready_for=5),
            pod("loading", age=30),
            pod("no-node", age=40, unschedulable=True),
            pod("going", age=900, ready_for=800, terminating=True)]
    seen = observe.observation(spec_replicas=4, pods=pods,
                               metrics=DeploymentMetrics(waiting=3, running=20),
                               now=NOW, since=NOW - timedelta(seconds=10))
    assert (seen.ready_replicas, seen.starting_replicas) == (2, 1)
    assert seen.starting_ages == (30.0,)
    assert seen.startup_samples == (90.0,)  # only the pod that became ready this cycle
    assert seen.load == 23


def test_missing_metrics_stay_missing() -> None:
    seen = observe.observation(spec_replicas=1, pods=[pod("a", age=60, ready_for=30)],
                               metrics=DeploymentMetrics(), now=NOW, since=None)
    assert seen.load is None and seen.waiting is None and seen.startup_samples == ()


def test_least_loaded_pods_get_the_lowest_deletion_cost() -> None:
    pods = [pod("busy", age=60, ready_for=50), pod("idle", age=60, ready_for=50),
            pod("unknown", age=60, ready_for=50), pod("loading", age=5)]
    costs = drain.deletion_costs(pods, {"busy": 12.0, "idle": 0.0})
    assert costs == {"busy": 12, "idle": 0, "unknown": 13}  # unknown counts as the busiest
    assert min(costs, key=costs.__getitem__) == "idle"


def test_only_changed_costs_are_written() -> None:
    pods = [pod("a", age=60, ready_for=50, cost=3), pod("b", age=60, ready_for=50)]
    assert drain.changed_costs(pods, {"a": 3, "b": 1}) == {"b": 1}


def test_capacity_marks_name_the_pods_whose_capacity_is_missing_or_stale() -> None:
    from datetime import UTC, datetime

    from lmscale.controller.pods import PodInfo
    from lmscale.planner import plan
    from lmscale.scaler import variants

    capacity = plan.plan_replica("qwen2.5-14b", "nvidia-l40s")  # not read here
    members = [variants.Member("fast", "m", None, capacity, 1.0, 8),
               variants.Member("slow", "m-slow", "slow", capacity, 1 / 3, 8)]
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def pod(name: str, variant: str | None, note: str | None, *, terminating: bool = False
            ) -> PodInfo:
        return PodInfo("ns", name, at, True, at, terminating, None, False, None,
                       variant=variant, capacity=note)

    pods = [pod("a", None, None), pod("b", None, "30.00"), pod("c", "slow", "30.00"),
            pod("d", "slow", "10.00"), pod("e", "slow", None, terminating=True),
            pod("f", "other", None)]
    assert variants.capacity_marks(pods, members, 30.0) == {"a": "30.00", "c": "10.00"}
