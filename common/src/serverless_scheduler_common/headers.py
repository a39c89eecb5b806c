"""Rules for the request headers a job may set (light: the API checks them on every
write, without loading the HTTP client)."""

from __future__ import annotations

import re
from collections.abc import Mapping

#: A header name as RFC 9110 defines it (a token); anything else is refused.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
#: Headers the HTTP facility sets itself: Host must match the checked name, and the
#: message framing is the HTTP client's (a caller's Content-Length or Transfer-Encoding
#: could desynchronise the connection).
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
#: Most headers a job may set, and the longest value.
MAX_HEADERS = 30
MAX_HEADER_VALUE = 4096


def splits_request(value: str) -> bool:
    """Whether a header value could split the request (a line break or a NUL)."""
    return any(ch in value for ch in "\r\n\x00")


def headers_problem(
    headers: Mapping[str, str], setter: str = "the scheduler", *, write: bool = True
) -> str | None:
    """Why a job's `headers` field is refused (None: it is fine). `setter` names who
    sets the reserved headers, for the message.

    `write=False` checks a stored job (each fire validates its snapshot) by the rules it
    was stored under: only what could split a request (a name with a space or colon, a
    line break). The rest is for new writes; at send time the HTTP facility refuses a
    name that is not a token and leaves out the reserved headers.
    """
    if not write:
        for name, value in headers.items():
            if not name or any(ch in name for ch in " :\r\n\t") or splits_request(value):
                return f"headers: {name[:40]!r} cannot be sent (a space, colon or line break)"
        return None
    if len(headers) > MAX_HEADERS:
        return f"headers: at most {MAX_HEADERS} headers"
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name):
            return f"headers: {name[:40]!r} is not a valid header name"
        if name.lower() in RESERVED_HEADERS:
            return f"headers: {name!r} is set by {setter} and cannot be given"
        if splits_request(value) or len(value) > MAX_HEADER_VALUE:
            return f"headers[{name!r}]: value must be one line of at most {MAX_HEADER_VALUE} characters"
    return None
