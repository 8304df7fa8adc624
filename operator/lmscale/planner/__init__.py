"""Capacity planner: model and GPU catalogs, memory, KV-cache and throughput arithmetic.

Pure: no Kubernetes, no HTTP, no clock reads; the only file it reads is its packaged catalog.
Modules, one job each: `catalog` (data), `weights`, `kvcache`, `memory`, `engine` (scheduler
defaults), `parallelism`, `performance` (step-time model), `slo`, `cost`, `storage`,
`plan` (one replica: `plan_replica`) and `recommend` (across GPU types).
"""
