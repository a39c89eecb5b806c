"""SSRF guard of the outbound HTTP facility, with the guard ON.

A "forbidden" server listens on 127.0.0.2; every way of reaching it must be refused
before a connection is made, so its request log stays empty. Where a test needs an
allowed starting host, 127.0.0.1 is trusted explicitly (`trusted_networks`), standing in
for a public site.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from pytest_httpserver import HTTPServer

from serverless_scheduler_common.http import (
    BlockedDestinationError,
    GuardedConnectionError,
    OutboundHTTP,
    connection_guard,
    forbidden_reason,
    parse_ip_literal,
)
from serverless_scheduler_common.settings import Settings


@pytest.fixture
def forbidden_server(second_loopback_server: HTTPServer) -> Iterator[HTTPServer]:
    server = second_loopback_server
    server.clear()
    server.expect_request("/").respond_with_data("secret")
    server.expect_request("/latest/meta-data/").respond_with_data("secret")
    yield server
    server.clear()


@pytest.fixture
def guarded() -> OutboundHTTP:
    return OutboundHTTP(Settings())  # default settings: guard on


def _spellings(port: int) -> list[str]:
    """Ways of writing 127.0.0.2 that resolvers accept."""
    return [
        f"http://127.0.0.2:{port}/",
        f"http://2130706434:{port}/",  # decimal
        f"http://0x7f000002:{port}/",  # hex
        f"http://0177.0.0.2:{port}/",  # octal
        f"http://0177.0.0.02:{port}/",
        f"http://127.2:{port}/",  # short form
        f"http://[::ffff:127.0.0.2]:{port}/",  # IPv4-mapped IPv6
        f"http://[::ffff:7f00:2]:{port}/",
    ]


def test_guard_is_on_by_default(forbidden_server: HTTPServer, guarded: OutboundHTTP) -> None:
    assert guarded.guard_enabled
    with pytest.raises(BlockedDestinationError, match="loopback"):
        guarded.request("GET", forbidden_server.url_for("/"))
    assert forbidden_server.log == []


def test_every_spelling_of_a_loopback_address_is_refused(
    forbidden_server: HTTPServer, guarded: OutboundHTTP
) -> None:
    for url in _spellings(forbidden_server.port):
        with pytest.raises(BlockedDestinationError, match=r"127\.0\.0\.2"):
            guarded.request("GET", url)
    assert forbidden_server.log == []


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("[::1]", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("[fd12::1]", "private"),
        ("169.254.1.1", "link-local"),
        ("[fe80::1]", "link-local"),
        ("[fec0::1]", "site-local"),  # deprecated IPv6 site-local, still routed inside
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("[ff02::1]", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("[::]", "unspecified"),
        ("169.254.169.254", "metadata"),
        ("[fd00:ec2::254]", "metadata"),
        ("100.100.100.200", "metadata"),
        ("168.63.129.16", "metadata"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[::ffff:169.254.169.254]", "metadata"),
        ("[2002:a00:1::]", "private"),  # 6to4 wrapping 10.0.0.1
        ("[64:ff9b::a9fe:a9fe]", "metadata"),  # NAT64 wrapping 169.254.169.254
        ("2852039166", "metadata"),  # decimal 169.254.169.254
        ("0251.0376.0251.0376", "metadata"),  # octal 169.254.169.254
        ("0xa9.0xfe.0xa9.0xfe", "metadata"),  # hex 169.254.169.254
        ("012.1", "private"),  # octal short form of 10.0.0.1
    ],
)
def test_forbidden_classes_are_refused(guarded: OutboundHTTP, host: str, reason: str) -> None:
    with pytest.raises(BlockedDestinationError, match=reason):
        guarded.request("GET", f"http://{host}/latest/meta-data/")


def test_public_addresses_pass_the_policy() -> None:
    for literal in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34"):
        address = parse_ip_literal(literal)
        assert address is not None
        assert forbidden_reason(address) is None, literal


def test_names_resolving_to_forbidden_addresses_are_refused(forbidden_server: HTTPServer) -> None:
    port = forbidden_server.port
    table = {
        "internal.invalid": ["127.0.0.2"],
        "mixed.invalid": ["93.184.216.34", "127.0.0.2"],  # any bad answer refuses
        "v6.invalid": ["::ffff:127.0.0.2"],
    }
    client = OutboundHTTP(Settings(), resolver=lambda host, _port: table[host])
    for name in table:
        with pytest.raises(BlockedDestinationError, match=name):
            client.request("GET", f"http://{name}:{port}/")
    assert forbidden_server.log == []


def test_localhost_by_name_is_refused(forbidden_server: HTTPServer, guarded: OutboundHTTP) -> None:
    with pytest.raises(BlockedDestinationError, match="loopback"):
        guarded.request("GET", f"http://localhost:{forbidden_server.port}/")


def test_trusted_networks_come_from_the_settings_too(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`SCHEDULER_TRUSTED_NETWORKS` lets one private network through, and only it."""
    from pydantic import ValidationError

    from serverless_scheduler_common.notify import AppriseNotifier

    monkeypatch.setenv("SCHEDULER_TRUSTED_NETWORKS", "127.0.0.1/32, 10.1.2.0/24")
    settings = Settings()
    assert settings.trusted_networks == ["127.0.0.1/32", "10.1.2.0/24"]
    httpserver.expect_request("/inside").respond_with_data("internal page")
    page = OutboundHTTP(settings).request("GET", httpserver.url_for("/inside"))
    assert page.content == b"internal page"
    with pytest.raises(BlockedDestinationError, match="loopback"):
        OutboundHTTP(settings).request("GET", f"http://127.0.0.2:{httpserver.port}/inside")
    hook = f"json://127.0.0.1:{httpserver.port}/hook"
    httpserver.expect_request("/hook").respond_with_data("ok")
    AppriseNotifier(settings).notify([hook], title="t", body="b")  # no refusal raised
    monkeypatch.setenv("SCHEDULER_TRUSTED_NETWORKS", "10.1.2.0/24,intranet")
    with pytest.raises(ValidationError, match="trusted_networks: 'intranet' is not a network"):
        Settings()


def test_redirect_from_allowed_host_to_forbidden_address_is_refused(
    httpserver: HTTPServer, forbidden_server: HTTPServer
) -> None:
    client = OutboundHTTP(Settings(), trusted_networks=["127.0.0.1/32"])
    targets = [*_spellings(forbidden_server.port), "http://169.254.169.254/latest/meta-data/"]
    for i, target in enumerate(targets):
        httpserver.expect_request(f"/hop{i}").respond_with_data(
            "", status=302, headers={"Location": target}
        )
    httpserver.expect_request("/fine").respond_with_data("public page")
    assert client.request("GET", httpserver.url_for("/fine")).content == b"public page"
    for i in range(len(targets)):
        with pytest.raises(BlockedDestinationError):
            client.request("GET", httpserver.url_for(f"/hop{i}"))
    assert len(httpserver.log) == len(targets) + 1
    assert forbidden_server.log == []


def test_redirect_to_a_name_that_resolves_privately_is_refused(
    httpserver: HTTPServer, forbidden_server: HTTPServer
) -> None:
    def resolver(host: str, port: int) -> list[str]:
        return {"public.invalid": ["127.0.0.1"], "rebind.invalid": ["127.0.0.2"]}[host]

    client = OutboundHTTP(Settings(), resolver=resolver, trusted_networks=["127.0.0.1/32"])
    httpserver.expect_request("/r").respond_with_data(
        "", status=301, headers={"Location": f"http://rebind.invalid:{forbidden_server.port}/"}
    )
    with pytest.raises(BlockedDestinationError, match=r"rebind\.invalid"):
        client.request("GET", f"http://public.invalid:{httpserver.port}/r")
    assert forbidden_server.log == []


def test_each_hop_is_resolved_once_and_connected_to_the_checked_address(
    httpserver: HTTPServer, forbidden_server: HTTPServer
) -> None:
    # A rebinding resolver answers the check with the allowed address, then switches.
    answers = iter([["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]])
    client = OutboundHTTP(
        Settings(), resolver=lambda host, port: next(answers), trusted_networks=["127.0.0.1/32"]
    )
    httpserver.expect_request("/").respond_with_data("checked address")
    response = client.request("GET", f"http://flip.invalid:{httpserver.port}/")
    assert response.content == b"checked address"
    assert forbidden_server.log == []


def test_allow_private_networks_lifts_the_guard(forbidden_server: HTTPServer) -> None:
    client = OutboundHTTP(Settings(allow_private_networks=True))
    assert not client.guard_enabled
    assert client.request("GET", forbidden_server.url_for("/")).content == b"secret"


def test_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_ALLOW_PRIVATE_NETWORKS", "true")
    assert not OutboundHTTP(Settings()).guard_enabled


# -- connection_guard: for libraries that connect by themselves (apprise) ---------------------
def _fetch_unguarded_style(url: str) -> bytes:
    """What a library such as apprise does: its own requests call, redirects followed."""
    return requests.get(url, timeout=5).content


def test_connection_guard_refuses_connections_to_forbidden_addresses(
    forbidden_server: HTTPServer,
) -> None:
    port = forbidden_server.port
    for url in (
        f"http://127.0.0.2:{port}/",
        f"http://localhost:{port}/",  # a name resolving to loopback
        f"http://[::ffff:127.0.0.2]:{port}/",
    ):
        with connection_guard(forbidden_reason) as refused, pytest.raises(requests.ConnectionError):
            _fetch_unguarded_style(url)
        assert refused, url
    assert forbidden_server.log == []


def test_connection_guard_checks_redirect_hops(
    httpserver: HTTPServer, forbidden_server: HTTPServer
) -> None:
    httpserver.expect_request("/go").respond_with_data(
        "", status=302, headers={"Location": forbidden_server.url_for("/")}
    )

    def only_127_0_0_1(address: object) -> str | None:
        return None if str(address) == "127.0.0.1" else "not the allowed host"

    with connection_guard(only_127_0_0_1) as refused, pytest.raises(requests.ConnectionError):
        _fetch_unguarded_style(httpserver.url_for("/go"))
    assert len(httpserver.log) == 1  # the allowed first hop was made
    assert forbidden_server.log == []
    assert refused == ["destination address 127.0.0.2 is not allowed (not the allowed host)"]


def test_connection_guard_covers_raw_sockets_and_worker_threads_with_its_context(
    forbidden_server: HTTPServer,
) -> None:
    import contextvars
    import socket
    import threading

    errors: list[BaseException] = []

    def connect() -> None:
        try:
            socket.create_connection(("127.0.0.2", forbidden_server.port), timeout=2).close()
        except BaseException as exc:
            errors.append(exc)

    with connection_guard(forbidden_reason):
        with pytest.raises(GuardedConnectionError):
            connect_socket = socket.socket()
            try:
                connect_socket.connect(("127.0.0.2", forbidden_server.port))
            finally:
                connect_socket.close()
        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(connect,))
        worker.start()
        worker.join()
    assert [type(e) for e in errors] == [GuardedConnectionError]
    # outside the context nothing is checked
    socket.create_connection(("127.0.0.2", forbidden_server.port), timeout=2).close()
