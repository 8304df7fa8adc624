"""Background processes with pid files, so `down` can find and stop every one of them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def _pid_file(pids: Path, name: str) -> Path:
    return pids / f"{name}.pid"


def running_pid(pids: Path, name: str) -> int | None:
    """The pid of `name` if its recorded process is still alive."""
    path = _pid_file(pids, name)
    try:
        pid = int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    with contextlib.suppress(FileNotFoundError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when it was our child
            return None
    return pid


def start(name: str, argv: list[str], *, pids: Path, logs: Path) -> int:
    """Start `argv` detached in its own session; its output goes to logs/<name>.log."""
    if pid := running_pid(pids, name):
        return pid
    pids.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _pid_file(pids, name).write_text(str(process.pid))
    return process.pid


def stop(name: str, *, pids: Path, grace_seconds: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after the grace period."""
    pid = running_pid(pids, name)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while running_pid(pids, name) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    _pid_file(pids, name).unlink(missing_ok=True)
