"""`AppriseNotifier`: the Notifier port over apprise (email, Slack, webhooks, SES...).

Apprise URLs carry secrets, so nothing here logs them (only their scheme). Title and
body are sent as plain data: apprise's templating and escape interpretation are off, so
user content (a page's text, a diff) is never evaluated. Email-like services get the
HTML body when one is given; everything else gets text.

Apprise makes its connections itself (HTTP for json://, ntfy://, gotify://, apprise://,
matrix://..., SMTP for mailto://, and so on), so the SSRF address policy is enforced
where they are made: each send runs under `connection_guard`, which checks every name
resolution and every socket connect of the send, redirects and proxies included. URLs
of the webhook-like schemes (json://, xml://, form://) are also checked before apprise
is called, for a clear message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from .http import (
    BlockedDestinationError,
    IPAddress,
    OutboundHTTPError,
    connection_guard,
    forbidden_reason,
    parse_ip_literal,
    system_resolver,
)
from .settings import Settings

log = logging.getLogger(__name__)

#: Largest title and body handed to apprise (services cut or refuse longer ones).
MAX_TITLE_CHARS = 250
MAX_BODY_CHARS = 32 * 1024

_EMAIL_SCHEMES = frozenset({"mailto", "mailtos", "ses", "sendgrid", "mailgun", "sparkpost"})
_WEBHOOK_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})


class NotificationError(Exception):
    """A notification URL did not accept the message (the runtime retries the run).

    `delivered` holds the URLs that did accept it in the same call: a caller that keeps
    state sends its retry to the others only (a stateless one sends to every URL again:
    a repeat, never a loss).
    """

    def __init__(self, message: str, delivered: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.delivered = tuple(delivered)


def truncate(text: str, limit: int, marker: str = "\n... [truncated]") -> str:
    """Cut `text` to at most `limit` characters, ending with a marker when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(marker), 0)] + marker


def scheme_of(url: str) -> str:
    url = url.strip()
    return url.split("://", 1)[0].lower() if "://" in url else "?"


class AppriseNotifier:
    """Notifier sending through apprise, one URL at a time so each failure is known.

    `trusted_networks` lists CIDRs the SSRF policy lets through even when private (as
    `OutboundHTTP`'s do); `Settings.allow_private_networks` lifts the policy.
    """

    def __init__(
        self, settings: Settings | None = None, *, trusted_networks: Iterable[str] = ()
    ) -> None:
        self._settings = settings or Settings()
        trusted = [*self._settings.trusted_networks, *trusted_networks]
        self._trusted = [ipaddress.ip_network(net, strict=False) for net in trusted]

    def _refusal(self, address: IPAddress) -> str | None:
        """Why the SSRF policy refuses `address`, or None."""
        if any(address in net for net in self._trusted):
            return None
        return forbidden_reason(address)

    def _check_destination(self, url: str) -> None:
        if self._settings.allow_private_networks or scheme_of(url) not in _WEBHOOK_SCHEMES:
            return
        host = urlsplit("http://" + url.strip().split("://", 1)[1]).hostname or ""
        literal = parse_ip_literal(host)
        addresses = [str(literal)] if literal is not None else system_resolver(host, 80)
        for address in addresses:
            reason = self._refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason is not None:
                raise BlockedDestinationError(
                    f"notification URL ({scheme_of(url)}://) points at a {reason} address"
                )

    def notify(
        self,
        urls: Sequence[str],
        *,
        title: str,
        body: str,
        html: str | None = None,
        positions: Sequence[int] | None = None,
    ) -> None:
        """Send to every URL, one at a time (errors name each by its place: `notify[i]`,
        from `positions` when `urls` is part of the job's list).

        Raises NotificationError when none accepted the message, or when one did not
        accept it for a reason that may pass (the service refused or was unreachable;
        `delivered` then names the URLs that did). A URL that can never work (not an
        apprise URL, a refused private address) is logged and does not fail a message
        that another URL delivered: retrying cannot help it.
        """
        import apprise  # heavy import, deferred so consumers that never notify stay light

        if not urls:
            return
        title = truncate(title.replace("\n", " "), MAX_TITLE_CHARS, "...")
        body = truncate(body, MAX_BODY_CHARS)
        html = truncate(html, MAX_BODY_CHARS, "</pre><p>... [truncated]</p>") if html else None
        failures: list[str] = []
        transient: list[str] = []
        delivered: list[str] = []
        places = list(positions) if positions is not None else list(range(len(urls)))
        for index, url in zip(places, urls, strict=True):
            scheme = scheme_of(url)
            try:
                self._check_destination(url)
            except OutboundHTTPError as exc:
                failures.append(f"notify[{index}] {exc}")
                continue
            sender: Any = apprise.Apprise()
            if not sender.add(url):
                failures.append(f"notify[{index}] ({scheme}://) is not a valid apprise URL")
                continue
            use_html = html is not None and scheme in _EMAIL_SCHEMES
            refused: list[str] = []
            with contextlib.ExitStack() as stack:
                if not self._settings.allow_private_networks:
                    refused = stack.enter_context(connection_guard(self._refusal))
                ok = sender.notify(
                    body=html if use_html else body,
                    title=title,
                    body_format=apprise.NotifyFormat.HTML
                    if use_html
                    else apprise.NotifyFormat.TEXT,
                    interpret_escapes=False,
                )
            if ok:
                delivered.append(url)
            elif refused:
                # A refused address (directly, by a redirect or through a proxy):
                # retrying cannot help, as for a refused webhook-like URL.
                failures.append(f"notify[{index}] ({scheme}://) {refused[0]}")
            else:
                transient.append(f"notify[{index}] ({scheme}://) was not accepted")
        for failure in failures + transient:
            log.warning("notification failed: %s", failure)
        if transient or (failures and not delivered):
            raise NotificationError("; ".join(failures + transient), delivered=delivered)


__all__ = ["AppriseNotifier", "NotificationError", "truncate"]
