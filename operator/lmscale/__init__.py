"""lmscale: plan capacity for LLM inference on Kubernetes and scale model replicas."""

__version__ = "0.1.0"
