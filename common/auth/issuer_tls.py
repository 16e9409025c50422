"""HTTPS to the OIDC issuer: which certificates its clients trust, and the one way they open its URLs.

The embedded issuer (`services/identity`) presents the stack's `identity` certificate (common.pki), so its
clients trust the stack's CA. An external issuer is trusted through the system store, plus BJSV_OIDC_CA_FILE
when it has a certificate from a private CA (an internal Keycloak, a provincial platform). The embedded issuer
speaks plain HTTP only under the explicit development setting BJSV_TLS=off.
"""

from __future__ import annotations

import ssl
import urllib.request
from http.client import HTTPResponse

from common import pki
from common.auth.config import AuthSettings


def trust(settings: AuthSettings) -> ssl.SSLContext | None:
    """The TLS context an HTTPS request to the issuer verifies it with; None for the plaintext embedded one."""
    if settings.embedded:
        if not settings.tls_enabled:
            return None
        return ssl.create_default_context(cafile=str(pki.ca_path(settings)))
    context = ssl.create_default_context()
    if settings.oidc_ca_file:
        context.load_verify_locations(cafile=str(settings.oidc_ca_file))
    return context


def urlopen(settings: AuthSettings, request: str | urllib.request.Request, timeout: float) -> HTTPResponse:
    """urllib's urlopen with the issuer's trust; raises OSError (URLError, HTTPError) like it."""
    return urllib.request.urlopen(request, timeout=timeout, context=trust(settings))
