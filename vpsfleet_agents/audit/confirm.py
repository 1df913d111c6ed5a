"""Active confirmations, where a banner alone is weak evidence. Each talks only to a target of
the configuration, on a port nmap found open, and a relay is proven only towards the auditor's
own canary: an open proxy must fetch the canary's secret token, an IRC server must greet a
registration, a TOR directory port must serve a relay descriptor. Each returns a transcript of
what was sent and received, escaped (`sanitize`) and truncated."""

from __future__ import annotations

import contextlib
import http.server
import re
import secrets
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from vpsfleet_agents.audit import sanitize

READ_LIMIT = 16 * 1024  # bytes read from a guest per exchange


@dataclass(frozen=True)
class Confirmation:
    test: str  # "http-get", "http-connect", "socks5", "socks4", "irc-register", "tor-dirport"
    confirmed: bool
    transcript: list[str] = field(default_factory=list)  # "> sent" / "< received", escaped


class Canary:
    """A tiny HTTP server on the auditor's own address that answers every request with a
    per-run secret token: a proxy that hands the token back relayed our request."""

    def __init__(self, address: str, port: int) -> None:
        self.token = "m29-canary-" + secrets.token_hex(16)
        body = self.token.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.address = address
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Canary:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def authority(self) -> str:
        return f"{self.address}:{self.port}"


@contextlib.contextmanager
def _connect(address: str, port: int, timeout: float) -> Iterator[socket.socket]:
    sock = socket.create_connection((address, port), timeout=timeout)
    try:
        yield sock
    finally:
        sock.close()


def _read(sock: socket.socket, until: bytes | None = None, limit: int = READ_LIMIT) -> bytes:
    """Read until `until` is seen, the peer closes, the limit or the timeout."""
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(min(4096, limit - len(data)))
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        data += chunk
        if until is not None and until in data:
            break
    return data


def _exchange(
    sock: socket.socket,
    payload: bytes,
    transcript: list[str],
    until: bytes | None = None,
    limit: int = READ_LIMIT,
) -> bytes:
    if payload:
        transcript.append("> " + sanitize.data(payload))
        sock.sendall(payload)
    answer = _read(sock, until, limit)
    transcript.append("< " + sanitize.data(answer))
    return answer


def _guarded(test: str, address: str, port: int, timeout: float, body: _Probe) -> Confirmation:
    transcript: list[str] = []
    try:
        with _connect(address, port, timeout) as sock:
            ok = body(sock, transcript)
    except OSError as error:
        transcript.append(f"! {sanitize.text(type(error).__name__ + ': ' + str(error))}")
        ok = False
    return Confirmation(test, ok, transcript)


class _Probe:
    def __call__(self, sock: socket.socket, transcript: list[str]) -> bool:
        raise NotImplementedError


def http_get(address: str, port: int, canary: Canary, timeout: float) -> Confirmation:
    """An absolute-URI GET to the canary: an open HTTP proxy fetches it and returns the token."""
    nonce = secrets.token_hex(8)
    request = (
        f"GET http://{canary.authority}/{nonce} HTTP/1.1\r\nHost: {canary.authority}\r\n"
        "User-Agent: vpsfleet-audit\r\nConnection: close\r\n\r\n"
    ).encode()

    class Probe(_Probe):
        def __call__(self, sock: socket.socket, transcript: list[str]) -> bool:
            return canary.token.encode() in _exchange(sock, request, transcript, canary.token.encode())

    return _guarded("http-get", address, port, timeout, Probe())


def http_connect(address: str, port: int, canary: Canary, timeout: float) -> Confirmation:
    """CONNECT to the canary, then a GET through the tunnel."""
    connect = f"CONNECT {canary.authority} HTTP/1.1\r\nHost: {canary.authority}\r\n\r\n".encode()
    get = f"GET / HTTP/1.0\r\nHost: {canary.authority}\r\n\r\n".encode()

    class Probe(_Probe):
        def __call__(self, sock: socket.socket, transcript: list[str]) -> bool:
            answer = _exchange(sock, connect, transcript, b"\r\n\r\n")
            if not re.match(rb"HTTP/1\.[01] 200", answer):
                return False
            return canary.token.encode() in _exchange(sock, get, transcript, canary.token.encode())

    return _guarded("http-connect", address, port, timeout, Probe())


def socks5(address: str, port: int, canary: Canary, timeout: float) -> Confirmation:
    """SOCKS5 without authentication, CONNECT to the canary, then a GET through it."""
    ip = socket.inet_aton(canary.address)
    get = f"GET / HTTP/1.0\r\nHost: {canary.authority}\r\n\r\n".encode()

    class Probe(_Probe):
        def __call__(self, sock: socket.socket, transcript: list[str]) -> bool:
            if _exchange(sock, b"\x05\x01\x00", transcript, limit=2) != b"\x05\x00":
                return False
            request = b"\x05\x01\x00\x01" + ip + struct.pack("!H", canary.port)
            reply = _exchange(sock, request, transcript, limit=10)
            if len(reply) < 2 or reply[:2] != b"\x05\x00":
                return False
            return canary.token.encode() in _exchange(sock, get, transcript, canary.token.encode())

    return _guarded("socks5", address, port, timeout, Probe())


def socks4(address: str, port: int, canary: Canary, timeout: float) -> Confirmation:
    ip = socket.inet_aton(canary.address)
    get = f"GET / HTTP/1.0\r\nHost: {canary.authority}\r\n\r\n".encode()

    class Probe(_Probe):
        def __call__(self, sock: socket.socket, transcript: list[str]) -> bool:
            request = b"\x04\x01" + struct.pack("!H", canary.port) + ip + b"audit\x00"
            reply = _exchange(sock, request, transcript, limit=8)
            if len(reply) < 2 or reply[1] != 0x5A:
                return False
            return canary.token.encode() in _exchange(sock, get, transcript, canary.token.encode())

    return _guarded("socks4", address, port, timeout, Probe())


IRC_GREETING = re.compile(rb"^(?::[^ \r\n]+ )?(?:001 |NOTICE (?:AUTH|\*) :)", re.MULTILINE)


def irc(address: str, port: int, timeout: float) -> Confirmation:
    """Register as a client: an IRC server answers with a 001 welcome or a NOTICE AUTH line."""
    nick = "m29" + secrets.token_hex(3)
    hello = f"NICK {nick}\r\nUSER {nick} 0 * :vpsfleet audit\r\n".encode()

    class Probe(_Probe):
        def __call__(self, sock: socket.socket, transcript: list[str]) -> bool:
            answer = _exchange(sock, hello, transcript, b" 001 ", limit=8192)
            ok = IRC_GREETING.search(answer) is not None
            with contextlib.suppress(OSError):
                sock.sendall(b"QUIT :vpsfleet audit\r\n")
                transcript.append("> " + sanitize.data(b"QUIT :vpsfleet audit\r\n"))
            return ok

    return _guarded("irc-register", address, port, timeout, Probe())


def tor_dirport(address: str, port: int, timeout: float) -> Confirmation:
    """A TOR relay's directory port serves its own descriptor at /tor/server/authority."""
    request = f"GET /tor/server/authority HTTP/1.0\r\nHost: {address}\r\n\r\n".encode()

    class Probe(_Probe):
        def __call__(self, sock: socket.socket, transcript: list[str]) -> bool:
            answer = _exchange(sock, request, transcript)
            return (
                re.search(rb"^router \S+ ", answer, re.MULTILINE) is not None
                and re.search(rb"^fingerprint ", answer, re.MULTILINE) is not None
            )

    return _guarded("tor-dirport", address, port, timeout, Probe())
