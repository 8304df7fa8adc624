"""A real local Kubernetes control plane with simulated GPU nodes, and no Docker.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as plain processes on
loopback; kwok plays the GPU nodes and the pods' start-up; Debian's Prometheus scrapes what
later parts export. Used by `make cluster-up`, the demo and the test fixtures.
"""
