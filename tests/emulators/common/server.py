"""Serving an emulator's ASGI app on loopback: uvicorn on 127.0.0.1, in a background thread.

    server = LoopbackServer(app, name="google-emu", certfile=..., keyfile=...)
    server.start()              # returns once uvicorn listens; server.base_url has the port
    ...
    server.stop()               # joins the thread and closes the socket

The socket is bound when the object is made, so ``base_url`` is known before the app is
served (the emulators put it in the links they return).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp


class _QuickStopServer(uvicorn.Server):
    """uvicorn that stops at once when asked, instead of polling every 100 ms."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._stop_loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await super().startup(sockets=sockets)

    async def main_loop(self) -> None:
        await self._stop_event.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own shutdown sleeps a fixed 100 ms and waits for every client to hang
        # up (a TLS client may never do so); close, then poll up to 2 s, then cancel.
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + 2.0
        while (
            self.server_state.connections or self.server_state.tasks
        ) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        for task in self.server_state.tasks:
            task.cancel()
        for server in self.servers:
            await server.wait_closed()

    def request_stop(self) -> None:
        self.should_exit = True
        self._stop_loop.call_soon_threadsafe(self._stop_event.set)


class LoopbackServer:
    """One ASGI app served over HTTP (or HTTPS with a certificate) on 127.0.0.1:<free port>."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self.name = name
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        scheme = "https" if certfile else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=2,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        self._server = _QuickStopServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=name, daemon=True
        )

    def start(self) -> None:
        """Run the server thread; return once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving, join the thread and close the socket (safe to call twice)."""
        if self._thread.is_alive():
            self._server.request_stop()
            self._thread.join(timeout=10)
        self._socket.close()
