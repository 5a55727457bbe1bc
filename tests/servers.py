"""Real `vitrine serve` processes for tests: started on a free loopback port, waited for,
always stopped (SIGTERM, then SIGKILL to its process group, workers included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from tests.services import free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 300.0) -> None:
    """Until /ready answers 200. Generous: processes load the model at once on a shared
    machine; only a dead process or a stuck start fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not become ready within {timeout} s")


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None, stderr: IO[bytes] | int = subprocess.DEVNULL, cli_args: tuple[str, ...] = ()) -> Iterator[str]:
    """`vitrine [cli_args] serve ARGS --port P` running until the block ends; yields its URL."""
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "search.cli", *cli_args, "serve", *args, "--port", str(port)],
        env=environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
        start_new_session=True,  # its own process group: the workers are stopped with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
