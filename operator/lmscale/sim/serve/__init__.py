"""`lmscale sim serve`: the live model-server simulator for a cluster's Prometheus.

For every Ready pod of every LanguageModelDeployment it runs the replica engine model
(`lmscale.sim.engine`), routes an offered load across the ready pods as the Service would,
and serves each pod's metrics under its engine's own names plus DCGM's GPU utilisation.

Modules: `load` (arrival processes, pure), `fleet` (engines per pod, pure), `engines`
(names and buckets per engine kind), `exporter` (Prometheus text), `inventory` (API bodies
to fleet input, pure), `kube` (the Kubernetes I/O), `server` (real clock, threads, HTTP).
The edge of `lmscale.sim`: only this package reads clocks and talks to the network.
"""
