"""The CRM's webhook endpoint on loopback, for the end-to-end tests.

It keeps every body it receives: ``received`` as ``(raw bytes, signature header, JSON)``,
and the documents split into ``nudges`` and ``events`` (bodies with a ``type``). Given a
secret, it checks each signature against real time (the trial clock never reaches ``t``)
and answers ``401`` to a bad one, counted in ``bad_signatures``. A request cut short by a
sender that died mid-way (a killed replica) is dropped: nothing arrived to verify.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.delivery.channels import verify_signature


class Receiver:
    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.received: list[tuple[bytes, str, dict[str, Any]]] = []
        self.nudges: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request
                    return
                sig = self.headers.get("X-NextStep-Signature", "")
                if outer.secret is not None and not verify_signature(
                    sig, body, outer.secret, now=int(time.time())
                ):
                    outer.bad_signatures += 1
                    self.send_response(401)
                else:
                    doc = json.loads(body)
                    outer.received.append((body, sig, doc))
                    (outer.events if "type" in doc else outer.nudges).append(doc)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/nudges"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def kinds(self) -> list[str]:
        return [n["kind"] for n in self.nudges]

    def of(self, kind: str, title: str) -> list[dict[str, Any]]:
        """The nudges of ``kind`` about the meeting titled ``title``."""
        return [
            n
            for n in self.nudges
            if n.get("kind") == kind and (n.get("meeting") or {}).get("title") == title
        ]

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        """The CRM events of ``type_`` (``meeting.state_changed``, …)."""
        return [e for e in self.events if e.get("type") == type_]
