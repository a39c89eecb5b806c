"""Outbound HTTP facility: caps, timeouts, redirects, charsets, conditional GET, pinning."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from serverless_scheduler_common.http import (
    HTTPConnectionError,
    HTTPTimeoutError,
    InvalidHeaderError,
    InvalidURLError,
    OutboundHTTP,
    ResponseTooLargeError,
    TooManyRedirectsError,
    UnsupportedContentTypeError,
    decode_body,
)
from serverless_scheduler_common.settings import Settings

HTML_TYPES = ("text/", "application/xhtml+xml")


@pytest.fixture
def http() -> Iterator[OutboundHTTP]:
    client = OutboundHTTP(Settings(allow_private_networks=True, http_timeout_s=2.0))
    yield client
    client.close()


def test_get_returns_status_headers_body_and_final_url(
    http: OutboundHTTP, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/page").respond_with_data(
        "<p>hello</p>", content_type="text/html; charset=utf-8", headers={"X-Thing": "1"}
    )
    response = http.request("GET", httpserver.url_for("/page"))
    assert response.status == 200
    assert response.content == b"<p>hello</p>"
    assert response.headers["x-thing"] == "1"
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.url == httpserver.url_for("/page")
    assert response.elapsed_s >= 0
    assert response.text() == "<p>hello</p>"


def test_sends_honest_user_agent_and_caller_headers(
    http: OutboundHTTP, httpserver: HTTPServer
) -> None:
    seen: dict[str, str] = {}

    def handler(request: Request) -> Response:
        seen.update(request.headers)
        return Response("ok")

    httpserver.expect_request("/h").respond_with_handler(handler)
    http.request("GET", httpserver.url_for("/h"), headers={"X-Api-Key": "k1"})
    assert seen["User-Agent"].startswith("serverless-scheduler/")
    assert seen["X-Api-Key"] == "k1"


def test_post_body_is_sent(http: OutboundHTTP, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/post", method="POST", data=b'{"a": 1}').respond_with_data(
        "created", status=201
    )
    response = http.request("POST", httpserver.url_for("/post"), body='{"a": 1}')
    assert response.status == 201


def test_oversized_body_with_content_length_is_refused(
    http: OutboundHTTP, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 300_000)
    with pytest.raises(ResponseTooLargeError, match="limit of 100000 bytes"):
        http.request("GET", httpserver.url_for("/big"), max_bytes=100_000)


def test_oversized_streamed_body_is_aborted(http: OutboundHTTP, httpserver: HTTPServer) -> None:
    produced: list[int] = []

    def endless(request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            for i in range(1000):  # 64 MB if nobody stops reading
                produced.append(i)
                yield b"y" * 65536

        return Response(chunks(), content_type="text/html")

    httpserver.expect_request("/stream").respond_with_handler(endless)
    with pytest.raises(ResponseTooLargeError):
        http.request("GET", httpserver.url_for("/stream"), max_bytes=200_000)
    assert len(produced) < 1000


def test_default_limit_comes_from_settings(httpserver: HTTPServer) -> None:
    client = OutboundHTTP(Settings(allow_private_networks=True, http_max_bytes=2048))
    httpserver.expect_request("/big").respond_with_data(b"z" * 4096)
    with pytest.raises(ResponseTooLargeError):
        client.request("GET", httpserver.url_for("/big"))


def test_slow_server_times_out(http: OutboundHTTP, httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    started = time.monotonic()
    with pytest.raises(HTTPTimeoutError, match="timed out"):
        http.request("GET", httpserver.url_for("/slow"), timeout_s=0.2)
    assert time.monotonic() - started < 0.9


def test_redirect_chain_is_followed(http: OutboundHTTP, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data("", status=301, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/c")}
    )
    httpserver.expect_request("/c").respond_with_data("final")
    response = http.request("GET", httpserver.url_for("/a"))
    assert response.status == 200
    assert response.content == b"final"
    assert response.url == httpserver.url_for("/c")
    assert len(response.redirects) == 2


def test_303_turns_post_into_get(http: OutboundHTTP, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/form", method="POST").respond_with_data(
        "", status=303, headers={"Location": "/done"}
    )
    httpserver.expect_request("/done", method="GET").respond_with_data("thanks")
    response = http.request("POST", httpserver.url_for("/form"), body=b"x=1")
    assert response.content == b"thanks"


def test_redirect_loop_stops_at_the_limit(httpserver: HTTPServer) -> None:
    client = OutboundHTTP(Settings(allow_private_networks=True, http_max_redirects=3))
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"}
    )
    with pytest.raises(TooManyRedirectsError, match="more than 3 redirects") as err:
        client.request("GET", httpserver.url_for("/loop") + "?token=secret")
    assert len(httpserver.log) == 4
    # The message names the page with its port, without the query (it may hold tokens).
    assert f":{httpserver.port}/loop)" in str(err.value)
    assert "secret" not in str(err.value)


def test_conditional_get_sends_validators_and_reports_304(
    http: OutboundHTTP, httpserver: HTTPServer
) -> None:
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(
            "<p>body</p>",
            content_type="text/html",
            headers={"ETag": '"v1"', "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"},
        )

    httpserver.expect_request("/c").respond_with_handler(handler)
    first = http.request("GET", httpserver.url_for("/c"))
    assert first.status == 200 and not first.not_modified
    assert first.validators() == {
        "etag": '"v1"',
        "last_modified": "Wed, 01 Jan 2025 00:00:00 GMT",
    }
    second = http.request("GET", httpserver.url_for("/c"), conditional=first.validators())
    assert second.not_modified
    assert second.content == b""
    assert httpserver.log[1][0].headers["If-Modified-Since"] == "Wed, 01 Jan 2025 00:00:00 GMT"


def test_binary_content_type_is_refused_when_caller_wants_text(
    http: OutboundHTTP, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/img").respond_with_data(b"\x89PNG\r\n", content_type="image/png")
    with pytest.raises(UnsupportedContentTypeError, match="'image/png' is not supported"):
        http.request("GET", httpserver.url_for("/img"), allowed_content_types=HTML_TYPES)
    # Without the restriction the same body is fine (the webhook plugin needs that).
    assert http.request("GET", httpserver.url_for("/img")).content == b"\x89PNG\r\n"


def test_non_utf8_pages_decode_by_header_meta_and_fallback(
    http: OutboundHTTP, httpserver: HTTPServer
) -> None:
    text = "Zażółć gęślą jaźń"
    httpserver.expect_request("/header").respond_with_data(
        text.encode("iso-8859-2"), content_type="text/html; charset=ISO-8859-2"
    )
    meta = f'<html><head><meta charset="windows-1250"></head><body>{text}</body></html>'
    httpserver.expect_request("/meta").respond_with_data(
        meta.encode("cp1250"), content_type="text/html"
    )
    assert http.request("GET", httpserver.url_for("/header")).text() == text
    assert text in http.request("GET", httpserver.url_for("/meta")).text()
    assert decode_body("café".encode("cp1252")) == "café"
    assert decode_body("\ufeffhi".encode()) == "hi"


def test_resolver_pins_connection_and_keeps_host_header(httpserver: HTTPServer) -> None:
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    client = OutboundHTTP(Settings(allow_private_networks=True), resolver=resolver)
    httpserver.expect_request("/pin").respond_with_data("pinned")
    # "pinned.invalid" does not exist in DNS: only the pinned address can answer.
    response = client.request("GET", f"http://pinned.invalid:{httpserver.port}/pin")
    assert response.content == b"pinned"
    assert asked == ["pinned.invalid"]
    assert httpserver.log[0][0].headers["Host"] == f"pinned.invalid:{httpserver.port}"


def test_credentials_are_dropped_on_cross_origin_redirect(httpserver: HTTPServer) -> None:
    client = OutboundHTTP(
        Settings(allow_private_networks=True), resolver=lambda host, port: ["127.0.0.1"]
    )
    other = f"http://other.invalid:{httpserver.port}/landing"
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": other}
    )
    httpserver.expect_request("/landing").respond_with_data("ok")
    client.request("GET", httpserver.url_for("/start"), headers={"Authorization": "Bearer s3cret"})
    first, second = httpserver.log[0][0], httpserver.log[1][0]
    assert first.headers["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in second.headers


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/file", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http:///nohost", "no host"),
        ("http://user:pw@example.com/", "credentials in the URL"),
        ("http://example.com:99999/", "invalid URL"),
    ],
)
def test_bad_urls_give_clear_errors(http: OutboundHTTP, url: str, message: str) -> None:
    with pytest.raises(InvalidURLError, match=message):
        http.request("GET", url)


def test_connection_refused_is_an_outbound_error(http: OutboundHTTP) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(HTTPConnectionError, match=r"connection to 127\.0\.0\.1 failed"):
        http.request("GET", f"http://127.0.0.1:{port}/")


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` (it is its own CA), as PEM files."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[HTTPServer, Path]]:
    cert_path, key_path = _self_signed(tmp_path, "secure.invalid")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    yield server, cert_path
    server.clear()
    server.stop()


def test_https_to_a_pinned_address_keeps_sni_and_certificate_name(
    tls_server: tuple[HTTPServer, Path],
) -> None:
    server, ca = tls_server
    client = OutboundHTTP(
        Settings(allow_private_networks=True),
        resolver=lambda host, port: ["127.0.0.1"],
        verify=str(ca),
    )
    server.expect_request("/tls").respond_with_data("over tls")
    response = client.request("GET", f"https://secure.invalid:{server.port}/tls")
    assert response.content == b"over tls"
    assert server.log[0][0].headers["Host"] == f"secure.invalid:{server.port}"
    # The certificate is still checked against the name, not the pinned IP.
    with pytest.raises(HTTPConnectionError, match="TLS error"):
        client.request("GET", f"https://127.0.0.1:{server.port}/tls")


def test_next_checked_address_is_tried_when_the_first_refuses(httpserver: HTTPServer) -> None:
    # Nothing listens on 127.0.0.3 at the server's port: the first address refuses.
    client = OutboundHTTP(
        Settings(allow_private_networks=True),
        resolver=lambda host, port: ["127.0.0.3", "127.0.0.1"],
    )
    httpserver.expect_request("/multi").respond_with_data("second address")
    response = client.request("GET", f"http://multi.invalid:{httpserver.port}/multi")
    assert response.content == b"second address"


def test_decompressed_size_counts_against_the_limit(
    http: OutboundHTTP, httpserver: HTTPServer
) -> None:
    import gzip

    bomb = gzip.compress(b"\0" * 2_000_000)  # ~2 KB on the wire, 2 MB unpacked
    httpserver.expect_request("/gz").respond_with_data(
        bomb, content_type="text/html", headers={"Content-Encoding": "gzip"}
    )
    with pytest.raises(ResponseTooLargeError):
        http.request("GET", httpserver.url_for("/gz"), max_bytes=100_000)


def test_slow_drip_body_hits_the_overall_deadline(
    http: OutboundHTTP, httpserver: HTTPServer
) -> None:
    def drip(request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(40):
                time.sleep(0.05)  # each read is quick, the whole body is not
                yield b"x" * 10

        return Response(chunks(), content_type="text/html")

    httpserver.expect_request("/drip").respond_with_handler(drip)
    started = time.monotonic()
    with pytest.raises(HTTPTimeoutError, match="too long"):
        http.request("GET", httpserver.url_for("/drip"), timeout_s=0.2)
    assert time.monotonic() - started < 1.5


def test_caller_headers_cannot_add_a_second_host_or_change_the_framing(
    http: OutboundHTTP, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/h").respond_with_data("ok")
    for headers in ({"Host\x0b": "internal.example"}, {"X\x00": "v"}, {"X-A": "a\r\nHost: b"}):
        with pytest.raises(InvalidHeaderError):
            http.request("GET", httpserver.url_for("/h"), headers=headers)
    assert httpserver.log == []
    # Host and framing headers are the facility's own: a caller's are not sent
    http.request(
        "POST",
        httpserver.url_for("/h"),
        headers={"HOST": "internal.example", "Content-Length": "0", "Transfer-Encoding": "x"},
        body=b"body",
    )
    sent = httpserver.log[0][0]
    assert sent.headers["Host"] == f"localhost:{httpserver.port}"
    assert sent.headers["Content-Length"] == "4"
    assert "Transfer-Encoding" not in sent.headers
    assert sent.get_data() == b"body"
