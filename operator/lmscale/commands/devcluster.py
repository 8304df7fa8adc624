"""`lmscale cluster up|down|status`: the local control plane with simulated GPU nodes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import yaml

from lmscale.devcluster import binaries, cluster, images, node, nodepools
from lmscale.devcluster.layout import Layout


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("cluster", help="run the local GPU cluster (no Docker)")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("up", help="start it, or do nothing when it already runs").set_defaults(
        func=_up)
    actions.add_parser("down", help="stop every process and delete its state").set_defaults(
        func=_down)
    actions.add_parser("binaries", help="find or build every binary; print their paths"
                       ).set_defaults(func=_binaries)
    actions.add_parser("manifests", help="print the GPU Node objects and kwok Stages (for "
                       "kind or any cluster)").set_defaults(func=_manifests)
    actions.add_parser("prometheus", help="start only Prometheus, with the same scrape "
                       "configuration (for kind)").set_defaults(func=_prometheus)
    actions.add_parser("status", help="print each component's pid as JSON").set_defaults(
        func=_status)
    actions.add_parser("images", help="build the operator and engine stand-in images (cached) "
                       "and load them into the real node, when it runs").set_defaults(
        func=_images)


def _up(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.monotonic()
    try:
        layout = cluster.up()
    except cluster.ClusterError as error:
        print(f"local cluster failed to start: {error}", file=sys.stderr)
        return 1
    print(f"local cluster ready in {time.monotonic() - started:.1f} s")
    print(f"  export KUBECONFIG={layout.kubeconfig}")
    print(f"  Prometheus: {layout.prometheus_url}")
    return 0


def _down(args: argparse.Namespace) -> int:
    cluster.down()
    print("local cluster stopped")
    return 0


def _binaries(args: argparse.Namespace) -> int:
    hack = Layout.default().hack
    for name in binaries.COMPONENT_OF:
        print(f"{name}: {binaries.find(name, hack=hack)}")
    return 0


def _manifests(args: argparse.Namespace) -> int:
    layout = Layout.default()
    print(yaml.safe_dump_all(nodepools.node_manifests(cluster.node_pools(layout))), end="")
    print("---")
    print(cluster.kwok_stages(layout, cluster.node_pools(layout)), end="")
    return 0


def _prometheus(args: argparse.Namespace) -> int:
    layout = Layout.default()
    cluster.start_prometheus(layout)
    print(f"Prometheus: {layout.prometheus_url}; targets: {layout.prometheus_targets}")
    return 0


def _status(args: argparse.Namespace) -> int:
    pids = cluster.status(Layout.default())
    print(json.dumps(pids, indent=2))
    return 0 if all(pids.values()) else 3


def _images(args: argparse.Namespace) -> int:
    layout = Layout.default()
    archives = images.all_archives(layout.hack.parent.parent)
    for archive in archives:
        print(f"{archive.name}: {archive.stat().st_size / 2**20:.0f} MiB")
    socket = node.paths(layout).containerd_socket
    if socket.exists():
        images.load(socket, archives)
        print("loaded into the real node")
    return 0
