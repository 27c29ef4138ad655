"""Run `nextstep serve` as a real process on loopback, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# A fixed NEXTSTEP_SECRET_KEY for every process the tests start (PostgreSQL refuses to
# start without one); tests of the key file and of that refusal unset it.
TEST_SECRET_KEY = "bmV4dHN0ZXAtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def client(self, key: str = "test-key") -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(
    env: dict[str, str], tmp: Path, *, port: int | None = None, ready_timeout: float = 30.0
) -> Iterator[Server]:
    """Start `nextstep serve` with ``env`` (on top of a clean NEXTSTEP_* environment)."""
    port = port or free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEXTSTEP_")}
    full = {
        **base,
        "NEXTSTEP_DATABASE_URL": f"sqlite:///{tmp}/serve.db",
        "NEXTSTEP_API_KEYS": "test-key",
        "NEXTSTEP_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "NEXTSTEP_POLL_SECONDS": "0.5",
        "NEXTSTEP_SECRET_KEY": TEST_SECRET_KEY,
        **env,
    }
    log = tmp / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"nextstep serve exited with {proc.returncode}:\n{server.output()}"
                )
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nextstep serve not ready:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
