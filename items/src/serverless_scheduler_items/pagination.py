"""Opaque list cursors shared by the job repositories.

A cursor encodes the last job_id of the previous page. It never carries the owner:
every query is scoped by the caller's owner, so a cursor from another tenant cannot
open that tenant's data.
"""

from __future__ import annotations

import base64
import binascii
import json


class InvalidCursorError(ValueError):
    """The `cursor` query parameter is not one this service issued."""


def encode_cursor(last_job_id: str) -> str:
    raw = json.dumps({"after": last_job_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


#: The message of a cursor that is not one (the stores name the parameter themselves).
_NOT_A_CURSOR = "cursor: not valid; pass next_cursor back unchanged"


def decode_cursor(cursor: str) -> str:
    """The job_id after which the next page starts; InvalidCursorError when malformed."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursorError(_NOT_A_CURSOR) from exc
    after = data.get("after") if isinstance(data, dict) else None
    if not isinstance(after, str) or not after or len(after) > 64:
        raise InvalidCursorError(_NOT_A_CURSOR)
    return after
