"""Simulated GPU node pools: a YAML file in, real Node manifests out (pure)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclasses.dataclass(frozen=True)
class NodePool:
    name: str
    count: int
    gpus_per_node: int
    product: str
    memory_mib: int


@dataclasses.dataclass(frozen=True)
class ClusterShape:
    pools: tuple[NodePool, ...]
    pod_startup_seconds: float


def load(path: Path) -> ClusterShape:
    data = yaml.safe_load(path.read_text())
    pools = tuple(
        NodePool(
            name=p["name"],
            count=int(p["count"]),
            gpus_per_node=int(p["gpusPerNode"]),
            product=p["product"],
            memory_mib=int(p["memoryMiB"]),
        )
        for p in data["pools"]
    )
    return ClusterShape(
        pools=pools,
        pod_startup_seconds=float(data.get("podStartupSeconds", 20)),
    )


def node_manifest(pool: NodePool, index: int) -> dict[str, Any]:
    """A Node as NVIDIA's GPU feature discovery and GPU operator would label and taint it."""
    name = f"gpu-{pool.name}-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "lmscale.dev/pool": pool.name,
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": pool.product,
                "nvidia.com/gpu.memory": str(pool.memory_mib),
                "nvidia.com/gpu.count": str(pool.gpus_per_node),
            },
        },
        "spec": {"taints": [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}]},
        "status": {
            "capacity": _resources(pool),
            "allocatable": _resources(pool),
        },
    }


def _resources(pool: NodePool) -> dict[str, str]:
    return {
        "cpu": str(16 * pool.gpus_per_node),
        "memory": f"{128 * pool.gpus_per_node}Gi",
        "pods": "110",
        "ephemeral-storage": "2Ti",
        GPU_RESOURCE: str(pool.gpus_per_node),
    }


def node_manifests(shape: ClusterShape) -> list[dict[str, Any]]:
    return [node_manifest(pool, i) for pool in shape.pools for i in range(pool.count)]
