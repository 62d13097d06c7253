"""Cross-site request forgery defence for the cookie-signed pages.

Every page form carries a token derived from the signed-in user's cookie and the server's secret (HMAC):
another site can make a browser post a form, but cannot read the token to put in it. A request whose
Origin names another site is refused too (that also covers the sign-in form, which has no cookie yet).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from fastapi import Request

from app.errors import Forbidden

FIELD = "csrf"


def token_for(secret: str, cookie_token: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{cookie_token}".encode(), hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """No Origin header (an old browser, a same-origin GET) passes; a present one must name this host."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def check(request: Request, secret: str, cookie_token: str, submitted: str | None) -> None:
    if not same_origin(request):
        raise Forbidden("the form came from another site", field=FIELD)
    if not cookie_token or not submitted or not hmac.compare_digest(token_for(secret, cookie_token), submitted):
        raise Forbidden("the form is missing its security token or it is stale: reload the page", field=FIELD)
