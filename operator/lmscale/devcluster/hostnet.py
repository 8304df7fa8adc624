"""What the real node changes on the host, and how `down` takes each change back.

A kubelet node leaves traces outside its state folder: a bridge, iptables chains (kube-proxy's,
the kubelet's and CNI's, IPv4 and IPv6), mounts (snapshots, volumes, network namespaces),
cgroups and runc state at fixed paths. Each function here removes one kind, and only lmscale's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

# Chains the kubelet, kube-proxy and the CNI plugins create; nothing else here uses these prefixes.
OWNED_CHAIN_PREFIXES = ("KUBE-", "CNI-")
# Fixed paths a node uses whatever its configured folders (containerd's runc root and shim
# sockets, the kubelet's device-plugin folder, CNI's result cache, named network namespaces).
FIXED_PATHS = (
    Path("/run/containerd/runc/k8s.io"),
    Path("/run/containerd/s"),
    Path("/var/lib/kubelet/device-plugins"),
    Path("/var/lib/cni"),
)
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def ensure_bridge(name: str, address: str, prefix: int) -> None:
    """The pod bridge with the node's address, before the kubelet needs a node IP."""
    if _run("ip", "link", "show", name, check=False).returncode != 0:
        _run("ip", "link", "add", name, "type", "bridge")
    if address not in _run("ip", "-4", "addr", "show", "dev", name).stdout:
        _run("ip", "addr", "add", f"{address}/{prefix}", "dev", name)
    _run("ip", "link", "set", name, "up")


def delete_bridge(name: str) -> None:
    _run("ip", "link", "del", name, check=False)


def owned_rules_removed(dump: str) -> str:
    """An iptables-save dump without lmscale-owned chains and the rules that use them."""
    kept = []
    for line in dump.splitlines():
        words = line.split()
        if line.startswith(":") and line[1:].startswith(OWNED_CHAIN_PREFIXES):
            continue
        if line.startswith("-A ") and (
            words[1].startswith(OWNED_CHAIN_PREFIXES)
            or any(w.startswith(OWNED_CHAIN_PREFIXES) for w in _jump_targets(words))
        ):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def _jump_targets(words: list[str]) -> Iterable[str]:
    for flag, target in zip(words, words[1:], strict=False):
        if flag in ("-j", "-g", "--jump", "--goto"):
            yield target


def remove_owned_chains() -> None:
    """Drop the KUBE-* and CNI-* chains from every table, IPv4 and IPv6, in one restore each."""
    for save, restore in (("iptables-save", "iptables-restore"),
                          ("ip6tables-save", "ip6tables-restore")):
        for table in ("filter", "nat", "mangle"):
            dump = _run(save, "-t", table, check=False).stdout
            if not any(p in dump for p in OWNED_CHAIN_PREFIXES):
                continue
            subprocess.run([restore, "-T", table], input=owned_rules_removed(dump),
                           text=True, capture_output=True, check=False)


def unmount_under(roots: Iterable[Path]) -> None:
    """Lazily unmount every mount point below `roots`, deepest first."""
    prefixes = tuple(str(r).rstrip("/") + "/" for r in roots)
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].encode().decode("unicode_escape") for line in mounts]
    for point in sorted((p for p in points if (p + "/").startswith(prefixes)),
                        key=len, reverse=True):
        _run("umount", "-l", point, check=False)


def remove_netns(prefix: str = "cni-") -> None:
    """Named network namespaces CNI left behind; their veths go with them."""
    if not NETNS_DIR.is_dir():
        return
    for ns in NETNS_DIR.glob(prefix + "*"):
        _run("umount", "-l", str(ns), check=False)
        with contextlib.suppress(OSError):
            ns.unlink()


def kill_runc_containers(runc_root: Path) -> None:
    """Containers whose shim is gone keep running; runc still knows them by its state."""
    if not runc_root.is_dir():
        return
    for container in runc_root.iterdir():
        _run("runc", "--root", str(runc_root), "delete", "--force", container.name, check=False)


def kill_processes_mentioning(text: str) -> None:
    """Shims are started by containerd but outlive it; they name its socket in their argv."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in argv:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), 9)


def remove_cgroups(name: str = "kubepods") -> None:
    """The kubelet's pod cgroups (cgroupfs driver), depth first; they are empty by now."""
    for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
        top = hierarchy / name
        if not top.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def remember_ip_forward(state: Path) -> None:
    """The CNI bridge plugin turns on IPv4 forwarding; keep what it was, once."""
    if not state.exists() and IP_FORWARD.exists():
        state.write_text(IP_FORWARD.read_text())


def restore_ip_forward(state: Path) -> None:
    if state.exists():
        with contextlib.suppress(OSError):
            IP_FORWARD.write_text(state.read_text())
