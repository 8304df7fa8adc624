"""Prometheus metric sources for the autoscaler: one query per metric per cycle, for all resources.

Layout (KEDA-style): `source.py` is the interface, `vllm.py`, `tgi.py`, `sglang.py` one file
per engine, `dcgm.py` GPU utilisation, `registry.py` the list of engines; `promql.py` and
`queries.py` build queries, `parse.py` reads answers (both pure); `client.py` is the only
HTTP; `reader.py` runs one cycle. Entry point: `reader.MetricsReader.read(targets, now=...)`.
"""
