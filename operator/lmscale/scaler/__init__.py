"""The scaling loop: one cycle reads every deployment's metrics and children, decides, acts."""
