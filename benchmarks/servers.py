"""Real `vitrine serve` processes on a free loopback port, for the benchmarks and the tests:
started, waited for until they answer, always stopped (SIGTERM, then SIGKILL to the process
group, workers included)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 300.0, log: Path | None = None, path: str = "/health") -> None:
    """Until a `vitrine serve` process answers `path` (/health: alive; /ready: fit for traffic)
    with 200. Generous: several processes may load the model at once on a shared machine; only
    a dead process or a stuck start fails (with the end of its `log`, if any)."""
    import httpx

    def tail() -> str:
        return log.read_text()[-3000:] if log is not None and log.exists() else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}\n{tail()}")
        try:
            if httpx.get(f"{url}{path}", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not start within {timeout} s\n{tail()}")


@contextmanager
def serving(
    *args: str, env: dict[str, str] | None = None, stderr: IO[bytes] | int = subprocess.DEVNULL,
    cli_args: tuple[str, ...] = (), timeout: float = 300.0,
) -> Iterator[str]:
    """`vitrine [cli_args] serve ARGS --port P` running until the block ends, ready for
    traffic; yields its URL."""
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "search.cli", *cli_args, "serve", *args, "--port", str(port)],
        env=environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
        start_new_session=True,  # its own process group: the workers are stopped with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout, path="/ready")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
