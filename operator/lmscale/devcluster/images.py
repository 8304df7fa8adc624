"""Container images built on this machine, with no registry, for the real node.

buildah builds them: it runs Dockerfiles without a daemon, changes no iptables rules (a
Docker daemon would set FORWARD to DROP under the pods' bridge), and writes OCI archives
that the node's containerd imports. No base image can be pulled here, so the Python base is
made from Debian's packages with debootstrap, and the pause image from Kubernetes' pause.c.
Each archive is cached under ~/.cache/lmscale/images, keyed by a hash of its inputs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from lmscale.devcluster import binaries, nodeconfig

BASE_IMAGE = "localhost/lmscale/debian-python:bookworm"
OPERATOR_IMAGE = "localhost/lmscale/lmscale:dev"
STANDIN_IMAGE = "localhost/lmscale/engine-standin:dev"
DEBIAN_SUITE = "bookworm"
# Debian 12's Python is 3.11, the version lmscale supports; venv for the image's own venv.
DEBIAN_PACKAGES = ("python3", "python3-venv")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# What the operator image's build reads from the checkout (its .dockerignore says the same).
OPERATOR_CONTEXT = ("pyproject.toml", "README.md", "operator/requirements.lock", "operator/lmscale")
STANDIN_CONTEXT = ("operator/standin/bin", "operator/standin/sglang")
# The builder stage installs from PyPI: it reaches it as this machine does (its pip config
# and CA bundle, on the host's network).
HOST_MOUNTS = ("/etc/pip.conf", "/etc/ssl/certs")


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lmscale" / "images"


def _run(*argv: str, cwd: Path | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip()


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _tree_bytes(root: Path, relative: Iterable[str]) -> Iterable[bytes]:
    """Names and contents of every file under `relative`, in a stable order, no bytecode."""
    for rel in relative:
        path = root / rel
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for f in files:
            yield str(f.relative_to(root)).encode()
            yield f.read_bytes()


def _has_image(name: str) -> bool:
    return subprocess.run(["buildah", "inspect", "--type", "image", name],
                          capture_output=True).returncode == 0


def _archive(name: str, key: str) -> Path:
    return cache_dir() / f"{name.rsplit('/', 1)[-1].replace(':', '-')}-{key}.tar"


def _push(image: str, archive: Path) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    _run("buildah", "push", "--quiet", image, f"oci-archive:{tmp}:{image}")
    tmp.replace(archive)
    return archive


def base_rootfs() -> Path:
    """A minimal Debian with Python, as a tar (about a minute with debootstrap, once)."""
    key = _digest([DEBIAN_SUITE.encode(), *(p.encode() for p in DEBIAN_PACKAGES)])
    out = cache_dir() / f"debian-{DEBIAN_SUITE}-python-{key}.tar"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        root = Path(tmp) / "rootfs"
        _run("debootstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}",
             DEBIAN_SUITE, str(root), DEBIAN_MIRROR)
        for junk in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
                     "var/cache/apt", "var/lib/apt/lists", "var/log"):
            shutil.rmtree(root / junk, ignore_errors=True)
        _run("tar", "--numeric-owner", "-C", str(root), "-cf", str(out) + ".tmp", ".")
        Path(str(out) + ".tmp").replace(out)
    return out


def ensure_base() -> None:
    """The base image in buildah's store, from the Debian rootfs."""
    if _has_image(BASE_IMAGE):
        return
    container = _run("buildah", "from", "scratch")
    try:
        _run("buildah", "add", "--quiet", container, str(base_rootfs()), "/")
        _run("buildah", "config", "--env", "PATH=/usr/local/bin:/usr/bin:/bin",
             "--cmd", "python3", container)
        _run("buildah", "commit", "--quiet", container, BASE_IMAGE)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)


def pause_archive(hack: Path) -> Path:
    """Kubernetes' pause container, compiled from the pinned module's pause.c."""
    version = binaries.read_versions(hack)["KUBERNETES_VERSION"]
    modules = Path(_run("go", "env", "GOMODCACHE"))
    source = modules / f"k8s.io/kubernetes@{version}" / "build/pause/linux/pause.c"
    if not source.exists():
        _run("go", "mod", "download", f"k8s.io/kubernetes@{version}",
             cwd=hack / "go" / "kubernetes")
    image = nodeconfig.PAUSE_IMAGE
    archive = _archive(image, _digest([source.read_bytes(), version.encode()]))
    if archive.exists():
        return archive
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "pause"
        _run("gcc", "-Os", "-static", "-o", str(binary), str(source))
        _run("strip", str(binary))
        container = _run("buildah", "from", "scratch")
        try:
            _run("buildah", "copy", "--quiet", container, str(binary), "/pause")
            _run("buildah", "config", "--entrypoint", '["/pause"]', "--user", "65535:65535",
                 container)
            _run("buildah", "commit", "--quiet", container, image)
        finally:
            subprocess.run(["buildah", "rm", container], capture_output=True)
    return _push(image, archive)


def build(repo: Path, *, dockerfile: str, image: str, context: Iterable[str],
          based_on: str | None = None) -> Path:
    """`dockerfile` built over a context of just `context`, as an OCI archive."""
    context = tuple(context)
    parent = [_run("buildah", "inspect", "--type", "image", "--format", "{{.FromImageID}}",
                   based_on).encode()] if based_on else []
    key = _digest([(repo / dockerfile).read_bytes(), *parent, *_tree_bytes(repo, context)])
    archive = _archive(image, key)
    if archive.exists():
        return archive
    ensure_base()
    with tempfile.TemporaryDirectory() as tmp:
        for rel in context:
            src, dst = repo / rel, Path(tmp) / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dst)
        mounts = [f"--volume={m}:{m}:ro" for m in HOST_MOUNTS if Path(m).exists()]
        _run("buildah", "bud", "--quiet", "--layers", "--network=host", *mounts,
             f"--build-arg=PYTHON_IMAGE={BASE_IMAGE}",
             f"--build-arg=OPERATOR_IMAGE={OPERATOR_IMAGE}", "-f", str(repo / dockerfile),
             "-t", image, tmp)
    return _push(image, archive)


def operator_archive(repo: Path) -> Path:
    return build(repo, dockerfile="operator/Dockerfile", image=OPERATOR_IMAGE,
                 context=OPERATOR_CONTEXT)


def load(socket: Path, archives: Iterable[Path]) -> None:
    """Import archives into the node's containerd, where the kubelet finds them by name."""
    for archive in archives:
        _run("ctr", f"--address={socket}", "--namespace=k8s.io", "images", "import",
             str(archive))


def standin_archive(repo: Path) -> Path:
    """The engine stand-in: the operator image plus the engines' command names."""
    operator_archive(repo)
    return build(repo, dockerfile="operator/standin.Dockerfile", image=STANDIN_IMAGE,
                 context=STANDIN_CONTEXT, based_on=OPERATOR_IMAGE)


def all_archives(repo: Path) -> list[Path]:
    return [operator_archive(repo), standin_archive(repo)]
