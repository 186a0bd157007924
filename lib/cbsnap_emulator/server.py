"""HTTP/1.1 front end: the API at ``/`` and the admin control plane under ``/_emulator/``.

API replies are always HTTP 200 with ``Content-Type: application/json`` exactly: the SDK treats any
other status as ``ServerNetworkError`` and any other content type (even with ``; charset=utf-8``) as
success, silently swallowing errors (tencent-facts.md 2.4).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import ApiError
from .gateway import ApiReply, ApiRequest, envelope
from .params import MAX_BODY_BYTES

log = logging.getLogger("cbsnap_emulator")

ADMIN_PREFIX = "/_emulator/"
AdminHandler = Callable[[str, str, str, bytes], tuple[int, Any]]
ApiHandler = Callable[[ApiRequest], ApiReply]


class BodyTooLarge(Exception):
    """The request body exceeds :data:`MAX_BODY_BYTES`."""


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading server that tracks open connections so :meth:`close_all` can end keep-alives."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many SDK clients connecting at once must not be refused

    def __init__(self, address: tuple[str, int], api: ApiHandler, admin: AdminHandler) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.api = api
        self.admin = admin
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, closed socket) is normal here; anything else is logged.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address, exc)
        else:
            log.exception("error while serving %s", client_address)

    def close_all(self) -> None:
        """Shut down every open connection (idle keep-alive threads then exit)."""
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def _is_loopback(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host.split("%", maxsplit=1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's requests.Session expects
    server_version = "cbsnap-emulator"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are dropped after this many seconds
    # Headers and body go out in separate writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms per call).
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        try:
            body = self._read_body()
        except BodyTooLarge:
            self.close_connection = True  # the unread body makes the connection unusable
            if path.startswith(ADMIN_PREFIX):
                self._send(413, {"error": "request body too large"})
            else:
                self._send(200, envelope(str(uuid.uuid4()), error=ApiError("RequestSizeLimitExceeded")))
            return
        except (ValueError, OSError):
            self.close_connection = True
            self._send(400, {"error": "malformed request body"})
            return
        if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/"):
            self._admin(path[len(ADMIN_PREFIX) :], query, body)
        elif path == "/":
            self._api(query, body)
        else:
            self._send(
                404, {"error": f"no such path {path}; the API is at / and the admin API at {ADMIN_PREFIX}"}
            )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_BODY_BYTES:
            raise BodyTooLarge
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise BodyTooLarge
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _api(self, query: str, body: bytes) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.command not in ("GET", "POST"):
            reply = ApiReply(
                envelope(
                    str(uuid.uuid4()),
                    error=ApiError("InvalidRequest", f"Method {self.command} is not supported."),
                )
            )
        else:
            reply = self.server.api(ApiRequest(self.command, query, headers, body))
        if reply.payload is None:
            # Injected "lost_reply": the action ran, but the caller never hears back.
            self.close_connection = True
            return
        self._send(200, reply.payload)

    def _admin(self, route: str, query: str, body: bytes) -> None:
        if not _is_loopback(self.client_address[0]):
            self._send(403, {"error": "the admin API only answers loopback clients"})
            return
        status, payload = self.server.admin(self.command, route.strip("/"), query, body)
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
