"""Trusting a private CA for outgoing HTTPS, the way the standard variables say.

``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` (OpenSSL's) and ``REQUESTS_CA_BUNDLE`` (the requests
convention the contract names too). Every HTTP client we own takes its trust from here:
httpx reads only the first two, so Graph and the nudge webhook and Slack channels get their
``verify`` context from ``ssl_context_from_env``; httplib2 (Google) and the requests session
MSAL runs on take one bundle file, from ``ca_bundle_file``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping


def ssl_context_from_env(environ: Mapping[str, str] | None = None) -> ssl.SSLContext | bool:
    """A verifying SSL context that trusts ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``/``SSL_CERT_DIR``.

    Returns ``True`` (httpx default trust store) when none is set.
    """
    env = os.environ if environ is None else environ
    names = [k for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "SSL_CERT_DIR") if env.get(k)]
    if not names:
        return True
    ctx = ssl.create_default_context()
    loaded: set[str] = set()
    for name in names:
        path = env[name]
        if path in loaded:
            continue
        try:
            if name == "SSL_CERT_DIR":
                ctx.load_verify_locations(capath=path)
            else:
                ctx.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as err:
            raise ValueError(f"{name}={path!r}: cannot load CA certificates: {err}") from err
        loaded.add(path)
    return ctx


def ca_bundle_file(environ: Mapping[str, str] | None = None) -> str | None:
    """The CA bundle file named by ``SSL_CERT_FILE`` or else ``REQUESTS_CA_BUNDLE``, if any.

    For clients that take one file (httplib2 reads neither variable; requests reads only
    the second). ``ValueError`` naming the variable when it names no file.
    """
    env = os.environ if environ is None else environ
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = env.get(name)
        if value:
            if not os.path.isfile(value):
                raise ValueError(f"{name}={value!r} is not a file")
            return value
    return None
