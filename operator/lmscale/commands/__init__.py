"""Subcommands of the `lmscale` CLI, one module each."""
