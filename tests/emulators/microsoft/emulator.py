"""A protocol-faithful Microsoft identity platform + Microsoft Graph (calendar) emulator.

One Starlette app serves both (see README.md for the doc pages followed):

    GET  /{tenant}/v2.0/.well-known/openid-configuration     (MSAL tenant discovery)
    POST /{tenant}/oauth2/v2.0/token                          (client credentials)
    GET  /v1.0/users/{id|upn}/calendarView/delta              (+ $skiptoken / $deltatoken)
    POST /v1.0/users/{id|upn}/calendar/getSchedule
    POST /v1.0/users/{id|upn}/events                          (transactionId idempotent)
    POST /v1.0/subscriptions ; GET/PATCH/DELETE /v1.0/subscriptions/{id}
    POST /v1.0/subscriptions/{id}/reauthorize

Tests drive it through the admin methods of ``GraphEmulator`` (thread-safe). It is the
model (``state.GraphState``: mailboxes, events, subscriptions, the clock) with the other
parts attached: ``auth`` (apps and tokens), ``faults``, ``notifier`` (validation and
notifications), ``api`` (the endpoints, ``handlers.py`` + ``subscriptions.py``).
"""

from __future__ import annotations

from collections import Counter

from tests.emulators.common.faults import FaultQueue
from tests.emulators.common.parts import Forward
from tests.emulators.microsoft.auth import App, Identity
from tests.emulators.microsoft.faults import Fault
from tests.emulators.microsoft.handlers import GraphAPI
from tests.emulators.microsoft.notifier import Delivery, GraphNotifier
from tests.emulators.microsoft.render import render_event
from tests.emulators.microsoft.state import Attendee, GraphState, Mailbox, Recurrence, instances
from tests.emulators.microsoft.subscriptions import SubscriptionEndpoints

__all__ = ["Attendee", "GraphEmulator", "Recurrence"]


class GraphEmulator(GraphState):
    """State + ASGI app. Admin methods are thread-safe and callable from tests."""

    token_lifetime = Forward("auth")
    latency = Forward("api")  # seconds every Graph call takes (to observe concurrency)
    ca_file = Forward("notifier")
    validation_timeout = Forward("notifier")
    require_https_notification_url = Forward("subscription_api")

    def __init__(
        self,
        *,
        tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
        client_id: str = "24d3b144-21ae-4080-943f-7067b395b913",
        client_secret: str = "emulator-secret",
        roles: set[str] | None = None,
        validation_timeout: float = 10.0,
        require_https_notification_url: bool = False,
        token_lifetime: int = 3599,
        ca_file: str | None = None,
    ) -> None:
        super().__init__(on_change=self._changed)
        self.tenant_id = tenant_id
        self.calls: Counter[str] = Counter()
        self.auth = Identity(
            lock=self._lock,
            calls=self.calls,
            clock=self.now,
            tenant_id=tenant_id,
            token_lifetime=token_lifetime,
        )
        self.apps = self.auth.apps
        self.default_client_id = client_id
        self.default_client_secret = client_secret
        self.register_app(
            client_id, client_secret, roles=roles if roles is not None else {"Calendars.ReadWrite"}
        )
        self.faults: FaultQueue[Fault] = FaultQueue()
        self.notifier = GraphNotifier(
            tenant_id=tenant_id, validation_timeout=validation_timeout, ca_file=ca_file
        )
        self.subscription_api = SubscriptionEndpoints(
            state=self, notifier=self.notifier, require_https=require_https_notification_url
        )
        self.api = GraphAPI(
            state=self,
            auth=self.auth,
            faults=self.faults,
            subscriptions=self.subscription_api,
            calls=self.calls,
        )
        self.requests = self.api.requests
        self.in_flight = self.api.in_flight
        self.max_in_flight = self.api.max_in_flight
        self.app = self.api.app()

    # tests/connectors/test_microsoft_connector.py renders an instance directly
    _instances = staticmethod(instances)
    _render = staticmethod(render_event)

    @property
    def base_url(self) -> str:
        """Where the emulator is served (set by the harness once the port is known)."""
        return self.api.base_url

    @base_url.setter
    def base_url(self, url: str) -> None:
        self.api.base_url = self.auth.base_url = url

    # --- lifecycle -----------------------------------------------------------------

    def start_sender(self) -> None:
        self.notifier.start()

    def stop_sender(self) -> None:
        self.notifier.push.close()

    # --- identities (auth.py) --------------------------------------------------------

    def register_app(self, client_id: str, secret: str, *, roles: set[str]) -> App:
        return self.auth.register_app(client_id, secret, roles=roles)

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far (Graph answers 401)."""
        self.auth.revoke_tokens()

    # --- faults (faults.py) ------------------------------------------------------------

    def inject_fault(
        self,
        status: int,
        count: int = 1,
        *,
        retry_after: str | float | None = None,
        endpoint: str | None = None,
        after_processing: bool = False,
    ) -> None:
        """The next ``count`` Graph calls (to ``endpoint`` if given, a key of ``calls``
        such as ``"GET calendarView.delta"``) answer ``status``.

        ``after_processing``: the call takes effect and only its response is lost.
        """
        ra = None if retry_after is None else str(retry_after)
        self.faults.add(Fault(status, ra, after_processing), call=endpoint, count=count)

    # --- notifications (notifier.py) ---------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        return self.notifier.push.log

    def drop_next_notifications(self, n: int = 1) -> None:
        self.notifier.push.drop_next(n)

    def duplicate_next_notifications(self, n: int = 1) -> None:
        self.notifier.push.duplicate_next(n)

    def send_lifecycle(self, subscription_id: str, lifecycle_event: str) -> None:
        """POST a lifecycle notification (reauthorizationRequired|missed|subscriptionRemoved)."""
        with self._lock:
            sub = self.subscriptions[subscription_id]
            if lifecycle_event == "subscriptionRemoved":
                del self.subscriptions[subscription_id]
            self.notifier.lifecycle(sub, lifecycle_event)

    def wait_for_deliveries(self, timeout: float = 5.0) -> None:
        """Block until every queued notification has been POSTed."""
        self.notifier.push.wait_idle(timeout)

    def _changed(self, mb: Mailbox, event_id: str, change_type: str) -> None:
        self.notifier.changed(
            list(self.subscriptions.values()), mb, event_id, change_type, self.now()
        )

    # --- observation -------------------------------------------------------------------

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.requests.clear()
