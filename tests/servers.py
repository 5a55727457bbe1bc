"""Real `vitrine serve` processes for tests: started on a free loopback port, waited for,
always stopped (SIGTERM, then SIGKILL to its process group, workers included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tests.services import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[1]



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
        wait_healthy(url, process, path="/ready")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
