"""Fetcher: the page request, built on the platform's outbound HTTP facility.

One `OutboundHTTP` (one pooled requests.Session) per worker thread, rebuilt only when
the settings that shape it change. Only textual content types are accepted, and a body
that looks binary despite its label is refused too.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from serverless_scheduler_common.http import (
    HTTPResponse,
    OutboundHTTP,
    UnsupportedContentTypeError,
)
from serverless_scheduler_common.settings import Settings

#: Media-type prefixes the checker can compare.
TEXT_CONTENT_TYPES = (
    "text/",
    "application/xhtml+xml",
    "application/xml",
    "application/json",
    "application/rss+xml",
    "application/atom+xml",
)

_workers = threading.local()


def _settings_key(settings: Settings) -> tuple[object, ...]:
    return (
        settings.allow_private_networks,
        settings.http_timeout_s,
        settings.http_max_bytes,
        settings.http_max_redirects,
    )


def http_for(settings: Settings) -> OutboundHTTP:
    """This worker thread's OutboundHTTP for `settings` (created once, then reused)."""
    key = _settings_key(settings)
    cached: tuple[tuple[object, ...], OutboundHTTP] | None = getattr(_workers, "http", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    if cached is not None:
        cached[1].close()
    client = OutboundHTTP(settings)
    _workers.http = (key, client)
    return client


def fetch_page(
    http: OutboundHTTP,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    conditional: Mapping[str, str] | None = None,
) -> HTTPResponse:
    """GET a page; a 304 comes back with `not_modified` True and an empty body.

    Raises OutboundHTTPError subclasses (blocked, too large, timeout, binary...).
    """
    response = http.request(
        "GET",
        url,
        headers=headers,
        conditional=conditional,
        allowed_content_types=TEXT_CONTENT_TYPES,
    )
    if b"\x00" in response.content[:1024] and not response.content.startswith(
        (b"\xff\xfe", b"\xfe\xff")
    ):
        raise UnsupportedContentTypeError("the response body is binary, not a text page")
    return response
