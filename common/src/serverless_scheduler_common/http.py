"""The platform's one outbound HTTP facility for plugins.

Every fetch of a user-supplied URL goes through `OutboundHTTP`: one pooled
`requests.Session` per instance (one instance per worker), connect/read timeouts and an
overall deadline, a streamed body-size cap, manual redirect following with a limit, an
honest User-Agent, conditional GET and charset detection.

The SSRF guard is on by default. Before the first request and before every redirect
hop the host is resolved once, every resolved address is checked against the forbidden
classes (loopback, private, link-local, CGNAT, multicast, unspecified, reserved, cloud
metadata; IPv4 and IPv6, including IPv4-mapped/compatible, 6to4 and NAT64 forms), and the
connection is pinned to the checked address: the URL sent on the wire carries that IP,
while the Host header, TLS SNI and certificate check keep the original name, so DNS
rebinding cannot switch the address between the check and the connect.
`Settings.allow_private_networks` lifts the guard.
"""

from __future__ import annotations

import codecs
import contextvars
import errno
import ipaddress
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from .headers import HEADER_NAME, RESERVED_HEADERS, splits_request
from .settings import Settings

log = logging.getLogger(__name__)

USER_AGENT = "serverless-scheduler/0.1 (scheduled job runner; page change monitor)"
_CHUNK = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Headers that must not follow a redirect to another origin (they carry credentials).
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Resolves (host, port) to candidate IP address strings.
Resolver = Callable[[str, int], Sequence[str]]


# -- errors ------------------------------------------------------------------------------
class OutboundHTTPError(Exception):
    """Base of every failure of an outbound request; the message is safe to show."""


class BlockedDestinationError(OutboundHTTPError):
    """The URL (or a redirect) points at an address the SSRF guard forbids."""


class ResponseTooLargeError(OutboundHTTPError):
    """The body is larger than the allowed maximum; reading was aborted."""


class TooManyRedirectsError(OutboundHTTPError):
    """The redirect chain is longer than the configured limit."""


class HTTPTimeoutError(OutboundHTTPError):
    """Connecting or reading took longer than the timeout."""


class InvalidURLError(OutboundHTTPError):
    """The URL is malformed or not http(s)."""


class InvalidHeaderError(OutboundHTTPError):
    """A request header has a name that is not a token or a value with a line break."""


class UnsupportedContentTypeError(OutboundHTTPError):
    """The response's content type is not one the caller accepts (e.g. binary)."""


class HTTPConnectionError(OutboundHTTPError):
    """The connection failed (refused, reset, DNS failure, TLS error)."""


# -- the address policy ------------------------------------------------------------------
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA = {
    ipaddress.ip_address("169.254.169.254"): "cloud metadata",  # AWS, GCP, Azure, ...
    ipaddress.ip_address("169.254.170.2"): "cloud metadata",  # ECS task metadata
    ipaddress.ip_address("fd00:ec2::254"): "cloud metadata",  # AWS IMDS over IPv6
    ipaddress.ip_address("100.100.100.200"): "cloud metadata",  # Alibaba Cloud
    ipaddress.ip_address("168.63.129.16"): "cloud metadata",  # Azure wire server
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, compatible, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    packed = int(address)
    if packed >> 32 == 0 and packed > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(packed)
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why the SSRF guard refuses `address`, or None when it is a public address."""
    if address in _METADATA:
        return _METADATA[address]
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = forbidden_reason(inner)
            return f"{reason}, embedded IPv4 {inner}" if reason else None
    checks: list[tuple[bool, str]] = [
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "CGNAT"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "non-global"),
    ]
    for hit, reason in checks:
        if hit:
            return reason
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """Parse `host` as an IP address in any spelling a resolver accepts, else None.

    Besides dotted quads and IPv6 this accepts what `inet_aton` does: decimal
    (`2130706433`), octal (`0177.0.0.1`), hex (`0x7f.1`) and short (`127.1`) forms.
    """
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if not re.fullmatch(r"[0-9a-fA-FxX.]+", host) or not host[0].isdigit():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the operating system (A and AAAA), keeping the system's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HTTPConnectionError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen


# -- the guard for libraries that connect by themselves -------------------------------------
#: Returns why an address is refused, or None when it may be contacted.
AddressPolicy = Callable[[IPAddress], str | None]


class GuardedConnectionError(socket.gaierror):
    """A connection the guard refused. A `gaierror`, so libraries that connect by
    themselves (requests, smtplib, ...) treat it as an unreachable host."""


@dataclass
class _Guard:
    policy: AddressPolicy
    refused: list[str] = field(default_factory=list)

    def check(self, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        reason = self.policy(ip)
        if reason is not None:
            message = f"destination address {ip} is not allowed ({reason})"
            self.refused.append(message)
            raise GuardedConnectionError(errno.EACCES, message)


_ACTIVE_GUARD: contextvars.ContextVar[_Guard | None] = contextvars.ContextVar(
    "serverless_scheduler_connection_guard", default=None
)
_INET_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_original_getaddrinfo = socket.getaddrinfo
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_sendto = socket.socket.sendto
_installed = False


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    infos = _original_getaddrinfo(host, port, *args, **kwargs)
    guard = _ACTIVE_GUARD.get()
    if guard is not None:
        for family, *_rest, sockaddr in infos:
            if family in _INET_FAMILIES:
                guard.check(str(sockaddr[0]))
    return infos


def _checked_address(sock: socket.socket, address: Any) -> Any:
    """`address` with its host replaced by a checked IP (when a guard is active)."""
    guard = _ACTIVE_GUARD.get()
    if guard is None or sock.family not in _INET_FAMILIES or not isinstance(address, tuple):
        return address
    host, port, *rest = address
    host = host.decode("idna") if isinstance(host, bytes) else str(host)
    literal = parse_ip_literal(host)  # any spelling the C library reads as an address
    if literal is not None:
        guard.check(str(literal))
        return (host, port, *rest)
    # A name: resolve it here, check every answer and connect to the first, so the
    # address connected to is the one checked.
    infos = _original_getaddrinfo(host, port, sock.family, sock.type)
    for *_rest, sockaddr in infos:
        guard.check(str(sockaddr[0]))
    if not infos:
        raise GuardedConnectionError(errno.EHOSTUNREACH, f"host {host!r} has no address")
    return (infos[0][4][0], port, *rest)


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _original_connect(self, _checked_address(self, address))


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    return _original_connect_ex(self, _checked_address(self, address))


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
    if args:
        args = (*args[:-1], _checked_address(self, args[-1]))
    return _original_sendto(self, data, *args)


def _install_guard() -> None:
    global _installed
    if _installed:
        return
    socket.getaddrinfo = _guarded_getaddrinfo
    # Plain functions become methods of the class, as the originals are.
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
    socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign,assignment]
    _installed = True


@contextmanager
def connection_guard(policy: AddressPolicy) -> Iterator[list[str]]:
    """Check every connection made in this context against `policy`.

    For libraries that make their own connections (apprise and the HTTP, SMTP, ...
    clients its services use), which the pinned `OutboundHTTP` cannot cover. While the
    context is active, in this thread and in threads started with a copy of its
    context (apprise's worker pool), every name resolution (`socket.getaddrinfo`) and
    every `connect`/`sendto` of an IPv4/IPv6 socket is checked: the resolved addresses
    and the address actually connected to. So redirects, names resolving to private
    addresses, DNS answers that change, and proxies from the environment are all
    checked where the connection is made. A refusal raises `GuardedConnectionError` in
    the library; the list yielded collects the refusals' messages. Outside such a
    context the socket functions behave as the originals.
    """
    _install_guard()
    guard = _Guard(policy)
    token = _ACTIVE_GUARD.set(guard)
    try:
        yield guard.refused
    finally:
        _ACTIVE_GUARD.reset(token)


# -- the response ------------------------------------------------------------------------
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _charset_param(content_type: str) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?([^\"';\s]+)", content_type, re.I)
    return match.group(1) if match else None


def _known_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_body(content: bytes, content_type: str = "") -> str:
    """Decode a body: BOM, then the header charset, then an HTML meta charset, then
    UTF-8, then windows-1252 (what browsers assume for unlabelled legacy pages)."""
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return content.decode(codec, errors="replace")
    declared = _known_codec(_charset_param(content_type))
    if declared is None:
        match = _META_CHARSET.search(content[:4096])
        declared = _known_codec(match.group(1).decode("ascii", "ignore")) if match else None
    if declared is not None:
        return content.decode(declared, errors="replace")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")


@dataclass
class HTTPResponse:
    """A fully read response (the body is already capped and in memory)."""

    status: int
    headers: CaseInsensitiveDict[str]
    content: bytes
    url: str
    elapsed_s: float
    redirects: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    @property
    def not_modified(self) -> bool:
        """True for a 304 answer to a conditional request."""
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def text(self) -> str:
        """The body as text, with charset detection (header, BOM, meta, UTF-8, cp1252)."""
        return decode_body(self.content, self.content_type)

    def validators(self) -> dict[str, str]:
        """`etag` / `last_modified` of this response, for the next conditional request."""
        out: dict[str, str] = {}
        if etag := self.headers.get("etag"):
            out["etag"] = etag
        if modified := self.headers.get("last-modified"):
            out["last_modified"] = modified
        return out


# -- connection pinning --------------------------------------------------------------------
class _PinnedHostAdapter(HTTPAdapter):
    """Sends to the IP in the URL while TLS uses the name in the Host header.

    The facility rewrites each URL's host to the checked IP and sets `Host`; this
    adapter makes TLS present that name as SNI and verify the certificate against it.
    The pool key includes both, so pooling still works per (IP, name).
    """

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_header = request.headers.get("Host")
        if isinstance(host_header, bytes):
            host_header = host_header.decode("ascii")
        if host_params.get("scheme") == "https" and host_header:
            name = _host_without_port(host_header)
            pool_kwargs["server_hostname"] = name
            pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs


def _host_without_port(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1 : host_header.index("]")]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


@dataclass(frozen=True)
class _Target:
    urls: tuple[str, ...]  # the URL with each checked IP as host, in resolver order
    host_header: str
    hostname: str


# -- the facility ----------------------------------------------------------------------------
class OutboundHTTP:
    """Outbound HTTP for plugins: one pooled session, SSRF guard, caps and timeouts.

    `resolver` replaces DNS resolution (tests map names to addresses with it);
    `trusted_networks` lists CIDRs the guard lets through even when private (an operator
    allowlist for one internal host, narrower than `allow_private_networks`); `verify`
    is True (system CAs) or a CA bundle path.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        resolver: Resolver | None = None,
        trusted_networks: Iterable[str] = (),
        user_agent: str = USER_AGENT,
        pool_maxsize: int = 32,
        verify: bool | str = True,
    ) -> None:
        self._settings = settings or Settings()
        self._resolve: Resolver = resolver or system_resolver
        trusted = [*self._settings.trusted_networks, *trusted_networks]
        self._trusted = [ipaddress.ip_network(net, strict=False) for net in trusted]
        self._user_agent = user_agent
        session = requests.Session()
        session.trust_env = False  # a proxy from the environment would bypass pinning
        session.verify = verify  # True, or the path of a CA bundle (private PKI, tests)
        adapter = _PinnedHostAdapter(pool_connections=16, pool_maxsize=pool_maxsize, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session

    @property
    def guard_enabled(self) -> bool:
        return not self._settings.allow_private_networks

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> OutboundHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checks ----------------------------------------------------------------------------
    def check_address(self, address: str) -> None:
        """Raise BlockedDestinationError when the guard forbids `address`."""
        if not self.guard_enabled:
            return
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip in net for net in self._trusted):
            return
        reason = forbidden_reason(ip)
        if reason is not None:
            raise BlockedDestinationError(f"destination address {ip} is not allowed ({reason})")

    def _target(self, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidURLError(f"invalid URL: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidURLError(f"only http and https URLs are allowed, got {scheme or 'none'!r}")
        host = parts.hostname
        if not host:
            raise InvalidURLError("URL has no host")
        if parts.username or parts.password:
            raise InvalidURLError("credentials in the URL are not allowed; use headers")
        port = port or (443 if scheme == "https" else 80)
        literal = parse_ip_literal(host)
        addresses = [str(literal)] if literal is not None else list(self._resolve(host, port))
        if not addresses:
            raise HTTPConnectionError(f"host {host!r} has no address")
        # Every address must pass: a name that also resolves to a private address
        # could be switched to it by the OS, so refuse it outright.
        for address in addresses:
            try:
                self.check_address(address)
            except BlockedDestinationError as exc:
                raise BlockedDestinationError(f"host {host!r}: {exc}") from None
        pinned: list[str] = []
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            netloc_ip = f"[{ip}]" if ip.version == 6 else str(ip)
            path = parts.path or "/"
            pinned.append(urlunsplit((scheme, f"{netloc_ip}:{port}", path, parts.query, "")))
        default_port = 443 if scheme == "https" else 80
        host_for_header = f"[{host}]" if ":" in host else host
        host_header = host_for_header if port == default_port else f"{host_for_header}:{port}"
        return _Target(urls=tuple(pinned), host_header=host_header, hostname=host)

    # -- the request -----------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        timeout_s: float | None = None,
        max_bytes: int | None = None,
        conditional: Mapping[str, str] | None = None,
        allowed_content_types: Sequence[str] | None = None,
    ) -> HTTPResponse:
        """Send one request and read the whole (capped) body, following redirects.

        `conditional` takes `etag` / `last_modified` (as `HTTPResponse.validators()`
        returns them) and sends If-None-Match / If-Modified-Since; a 304 comes back as
        a response with `not_modified` True. `allowed_content_types` lists accepted
        media-type prefixes (e.g. `("text/", "application/xhtml+xml")`); another type
        raises UnsupportedContentTypeError before the body is read.
        """
        settings = self._settings
        timeout = timeout_s if timeout_s is not None else settings.http_timeout_s
        limit = max_bytes if max_bytes is not None else settings.http_max_bytes
        deadline = time.monotonic() + timeout * 3  # overall cap against slow-drip bodies
        started = time.perf_counter()

        send_headers: dict[str, str] = {"User-Agent": self._user_agent, "Accept-Encoding": "gzip"}
        for name, value in (headers or {}).items():
            if not HEADER_NAME.fullmatch(name):
                # e.g. "Host\x0b", which lenient servers read as a second Host header
                raise InvalidHeaderError(f"header name {name[:40]!r} is not a valid token")
            if splits_request(value):
                raise InvalidHeaderError(f"header {name!r}: value must be one line")
            if name.lower() in RESERVED_HEADERS:
                continue  # the facility owns Host (it must match the checked name) and framing
            send_headers[name] = value
        for key, value in (conditional or {}).items():
            normal = key.lower().replace("-", "_")
            if normal in ("etag", "if_none_match"):
                send_headers["If-None-Match"] = value
            elif normal in ("last_modified", "if_modified_since"):
                send_headers["If-Modified-Since"] = value

        method = method.upper()
        data: bytes | None = body.encode("utf-8") if isinstance(body, str) else body
        current = url
        redirects: list[str] = []
        while True:
            target = self._target(current)
            response = self._send(method, target, send_headers, data, timeout)
            try:
                if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
                    if len(redirects) >= settings.http_max_redirects:
                        raise TooManyRedirectsError(
                            f"more than {settings.http_max_redirects} redirects "
                            f"(last: {_safe_url(current)})"
                        )
                    nxt = urljoin(current, response.headers["location"])
                    if method != "HEAD" and (
                        response.status_code == 303
                        or (response.status_code in (301, 302) and method == "POST")
                    ):
                        method, data = "GET", None
                        send_headers = {
                            k: v
                            for k, v in send_headers.items()
                            if k.lower() not in ("content-type", "content-length")
                        }
                    if _origin(nxt) != _origin(current):
                        send_headers = {
                            k: v
                            for k, v in send_headers.items()
                            if k.lower() not in _CREDENTIAL_HEADERS
                        }
                    log.debug("redirect %s -> %s", response.status_code, _safe_url(nxt))
                    redirects.append(current)
                    current = nxt
                    continue
                _check_content_type(response, allowed_content_types)
                content = self._read_capped(response, limit, deadline)
            finally:
                response.close()
            return HTTPResponse(
                status=response.status_code,
                headers=CaseInsensitiveDict(dict(response.headers)),
                content=content,
                url=current,
                elapsed_s=time.perf_counter() - started,
                redirects=redirects,
            )

    def get(self, url: str, **kwargs: Any) -> HTTPResponse:
        return self.request("GET", url, **kwargs)

    def _send(
        self,
        method: str,
        target: _Target,
        headers: Mapping[str, str],
        data: bytes | None,
        timeout: float,
    ) -> requests.Response:
        all_headers = dict(headers)
        all_headers["Host"] = target.host_header
        try:
            for index, url in enumerate(target.urls):
                try:
                    return self._session.request(
                        method,
                        url,
                        headers=all_headers,
                        data=data,
                        timeout=(timeout, timeout),
                        allow_redirects=False,
                        stream=True,
                    )
                except requests.ConnectionError as exc:
                    # Refused or unreachable: nothing was sent, so the next checked
                    # address of the same name may be tried (IPv6 first, then IPv4...).
                    last = index == len(target.urls) - 1
                    if last or isinstance(exc, requests.Timeout) or not _never_connected(exc):
                        raise
            raise AssertionError("unreachable: a target has at least one address")
        except requests.Timeout as exc:
            raise HTTPTimeoutError(
                f"timed out after {timeout:g}s contacting {target.hostname}"
            ) from exc
        except requests.exceptions.SSLError as exc:
            raise HTTPConnectionError(f"TLS error with {target.hostname}: {exc}") from exc
        except requests.RequestException as exc:
            raise HTTPConnectionError(
                f"connection to {target.hostname} failed: {type(exc).__name__}"
            ) from exc

    @staticmethod
    def _read_capped(response: requests.Response, limit: int, deadline: float) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLargeError(
                f"response is larger than the limit of {limit} bytes "
                f"({int(declared)} bytes declared)"
            )
        from urllib3.exceptions import HTTPError as Urllib3Error
        from urllib3.exceptions import ReadTimeoutError

        chunks: list[bytes] = []
        size = 0
        raw = response.raw
        try:
            # read1 returns whatever one socket read brings (decompressed), so the size
            # cap and the overall deadline are checked as data trickles in.
            while chunk := raw.read1(_CHUNK, decode_content=True):
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLargeError(
                        f"response is larger than the limit of {limit} bytes; aborted"
                    )
                if time.monotonic() > deadline:
                    raise HTTPTimeoutError("reading the response took too long; aborted")
                chunks.append(chunk)
        except (ReadTimeoutError, TimeoutError) as exc:
            raise HTTPTimeoutError("timed out reading the response") from exc
        except (Urllib3Error, OSError) as exc:
            raise HTTPConnectionError(f"reading the response failed: {type(exc).__name__}") from exc
        return b"".join(chunks)


def _never_connected(exc: BaseException) -> bool:
    """True when the error chain shows the TCP connection was never established."""
    from urllib3.exceptions import NewConnectionError

    seen: BaseException | None = exc
    while seen is not None:
        reason = getattr(seen, "reason", None)
        if isinstance(seen, NewConnectionError) or isinstance(reason, NewConnectionError):
            return True
        for arg in getattr(seen, "args", ()):
            if isinstance(arg, BaseException) and isinstance(
                getattr(arg, "reason", None), NewConnectionError
            ):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _safe_url(url: str) -> str:
    """The URL without credentials and query string (queries often carry tokens), for
    logs and messages; the port is kept (`http://127.0.0.1:8132/loop`)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _check_content_type(response: requests.Response, allowed: Sequence[str] | None) -> None:
    if not allowed or response.status_code == 304:
        return
    content_type = response.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        return
    if not any(media.startswith(prefix.lower()) for prefix in allowed):
        raise UnsupportedContentTypeError(
            f"content type {media!r} is not supported (expected one of: {', '.join(allowed)})"
        )
