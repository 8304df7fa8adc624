"""Where the weights come from: bytes to fetch, the volume to request, the cold-start delay.

A new replica fetches its checkpoint (Hub or object store) or reads it from a volume, copies
it to the GPUs while reading (safetensors are memory-mapped, so the read is the bottleneck),
then the engine starts: CUDA and NCCL initialisation, the memory profile run, torch.compile
and CUDA-graph capture. The autoscaler uses the sum as its start-up delay.

The bandwidths are stated assumptions, not measurements of any cluster: a Hub download with
the default client reaches a few hundred MB/s, an object store with parallel range reads about
1 GB/s per pod, a network volume (cloud block storage, NFS) about 500 MB/s. Users give their
own with `--load-bandwidth-mbps`.
"""

from __future__ import annotations

import dataclasses

from lmscale.planner import catalog

# Source scheme -> assumed read bandwidth, bytes/s.
SOURCE_BANDWIDTH = {
    "hf": 250e6,
    "s3": 1000e6,
    "gs": 1000e6,
    "pvc": 500e6,
}
# Tokenizer, config and generation files next to the weights.
EXTRA_FILE_BYTES = 64 * (1 << 20)
# Headroom on the volume: a Hub download writes into the cache before linking, and
# checkpoints get re-uploaded or revised.
PVC_HEADROOM = 1.2
# vLLM engine start after the weights are in memory, seconds: CUDA/NCCL init, profile run,
# torch.compile (cached after the first start on a node) and CUDA-graph capture. See
# docs/capacity.md for the measurement behind it.
ENGINE_START_SECONDS = 45.0


@dataclasses.dataclass(frozen=True)
class StoragePlan:
    source: str  # hf, s3, gs or pvc
    download_bytes: int
    pvc_bytes: int
    load_bandwidth_bytes_per_second: float
    load_seconds: float
    engine_start_seconds: float

    @property
    def pvc_size(self) -> str:
        """The volume request as a Kubernetes quantity, in whole GiB."""
        return f"{-(-self.pvc_bytes // catalog.GIB)}Gi"

    @property
    def cold_start_seconds(self) -> float:
        return self.load_seconds + self.engine_start_seconds


def source_scheme(uri: str | None) -> str:
    """The scheme of `spec.model.source.uri` (`hf://org/name` -> hf); hf when unset."""
    if not uri:
        return "hf"
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else "hf"
    if scheme not in SOURCE_BANDWIDTH:
        raise ValueError(
            f"unknown model source scheme {scheme!r}; use one of {', '.join(SOURCE_BANDWIDTH)}"
        )
    return scheme


def storage_plan(
    weights_bytes: int,
    *,
    source: str = "hf",
    bandwidth_bytes_per_second: float | None = None,
    engine_start_seconds: float = ENGINE_START_SECONDS,
) -> StoragePlan:
    """Bytes to fetch, volume to request and cold start for a checkpoint of `weights_bytes`."""
    if source not in SOURCE_BANDWIDTH:
        raise ValueError(
            f"unknown model source {source!r}; use one of {', '.join(SOURCE_BANDWIDTH)}"
        )
    bandwidth = bandwidth_bytes_per_second or SOURCE_BANDWIDTH[source]
    if bandwidth <= 0:
        raise ValueError("load bandwidth must be positive")
    download = weights_bytes + EXTRA_FILE_BYTES
    return StoragePlan(
        source=source,
        download_bytes=download,
        pvc_bytes=int(download * PVC_HEADROOM),
        load_bandwidth_bytes_per_second=bandwidth,
        load_seconds=download / bandwidth,
        engine_start_seconds=engine_start_seconds,
    )
