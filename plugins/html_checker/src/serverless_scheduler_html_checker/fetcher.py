"""Fetcher: the page request, built on the platform's outbound HTTP facility.

One `OutboundHTTP` (one pooled requests.Session) per worker thread, rebuilt only when
the settings that shape it change. Only textual content types are accepted, and a body
that looks binary despite its label (a file signature such as `%PDF-`, or NUL bytes
near the start that are not UTF-16/32 text) is refused too.
"""

from __future__ import annotations

import re
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

#: Starts of binary formats that servers are known to label as text (PDF, images,
#: archives): refused even when no NUL byte comes early.
_BINARY_SIGNATURES = (
    b"%PDF-",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"\xff\xd8\xff",
    b"PK\x03\x04",
    b"\x1f\x8b\x08",
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
    if _looks_binary(response.content, response.content_type):
        raise UnsupportedContentTypeError("the response body is binary, not a text page")
    return response


def _looks_binary(content: bytes, content_type: str) -> bool:
    """A file format's signature, or NUL bytes near the start (which UTF-16 and UTF-32
    text has, with a BOM or a declared charset)."""
    if content.startswith(_BINARY_SIGNATURES):
        return True
    if b"\x00" not in content[:1024] or content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    charset = re.search(r"charset\s*=\s*[\"']?\s*utf-?(16|32)", content_type, re.I)
    return charset is None
