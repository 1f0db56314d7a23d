"""A Ray head of a test's own: a free port, its processes (found by its temp dir or port), stopping only it,
and the tails of its error logs for a failure message. Other Ray instances on the machine are left alone."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_head_pids(temp_dir: str, port: int) -> set[int]:
    """Processes of the Ray head this test started: those naming its temp dir or its port on their
    command line (GCS, raylet, monitors), and their descendants (workers, agents)."""
    procs: dict[int, tuple[int, str]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            procs[int(d.name)] = (ppid, cmd)
    ours = {pid for pid, (_, cmd) in procs.items()
            if pid != os.getpid() and (temp_dir in cmd or ("ray" in cmd and f":{port} " in f"{cmd} "))}
    grew = True
    while grew:
        kids = {pid for pid, (ppid, _) in procs.items() if ppid in ours} - ours
        grew = bool(kids)
        ours |= kids
    return ours


def stop_ray_head(temp_dir: str, port: int) -> None:
    """Stop the Ray head this test started, and only it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in ray_head_pids(temp_dir, port):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while ray_head_pids(temp_dir, port) and time.monotonic() < deadline:
            time.sleep(0.5)


def head_logs(temp_dir: str) -> str:
    """The tails of the head's error logs, for a failure message."""
    logs = sorted(Path(temp_dir).glob("session_*/logs/*.err"))
    return "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in logs if p.stat().st_size)
