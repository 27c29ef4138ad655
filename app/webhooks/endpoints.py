"""HTTP: provider webhooks, one thin endpoint per path a provider declares.

``POST /webhooks/{provider}{path}`` for each reader in the registry
(``app.providers.webhook_readers``): Google ``/webhooks/google``, Graph
``/webhooks/microsoft`` and ``/webhooks/microsoft/lifecycle``. The provider's reader turns
the request into neutral terms (a malformed one is a 422 naming what is wrong), a
handshake is answered as the provider asks, and the rest is verify → store → acknowledge
(``app.webhooks.service``); the sync runs afterwards.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from app.errors import InvalidRequest
from app.providers import webhook_readers
from app.runtime import Runtime
from app.webhooks.service import take
from connectors.base import WebhookRequest, Webhooks

_NO_QUERY: dict[str, str] = {}


def _endpoint(
    provider: str, path: str, reader: Webhooks
) -> Callable[[Request], Awaitable[Response]]:
    # The runtime is read from the app, not through a dependency, and an absent query
    # string is not parsed: this is the hottest path of the service, and FastAPI's
    # dependency solving alone cost more than the rest of the endpoint.
    async def endpoint(request: Request) -> Response:
        rt: Runtime = request.app.state.runtime
        query = request.query_params if request.scope.get("query_string") else _NO_QUERY
        try:
            inbound = reader.read(
                WebhookRequest(
                    path=path,
                    headers=request.headers,
                    query=query,
                    body=await request.body(),
                    received_at=rt.clock.now(),
                )
            )
        except ValueError as err:
            raise InvalidRequest(str(err)) from err
        if inbound.handshake is not None:
            return PlainTextResponse(inbound.handshake, status_code=200)
        await take(rt, provider, inbound)
        return Response(status_code=reader.accepted_status)

    return endpoint


def _build() -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])
    for provider, reader in webhook_readers().items():
        for path, summary in reader.paths.items():
            router.add_api_route(
                f"/{provider}{path}",
                _endpoint(provider, path, reader),
                methods=["POST"],
                status_code=reader.accepted_status,
                summary=summary,
                name=f"webhook_{provider}{path.replace('/', '_')}",
            )
    return router


router = _build()
