"""What the operator wants the cluster to look like, and what it says about it (pure)."""
