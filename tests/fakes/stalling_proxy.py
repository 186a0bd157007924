"""A TCP proxy that can stall traffic: a hung Redis, for tests that must not hang themselves.

Clients connect to :attr:`StallingProxy.port`; every connection is piped to the upstream
server. While :attr:`StallingProxy.delay` is above zero, each chunk a client sends waits
that long before it is forwarded — one Redis command ≈ one chunk, so "1 s per operation",
as a hung server looks from the client. A command whose client gave up meanwhile still
reaches the server later, as it would on a real network. Threads only; :meth:`stop`
closes every socket.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class StallingProxy:
    """See the module docstring."""

    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1") -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server((host, 0))
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self.delay = 0.0
        self.stalled_chunks = 0
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="stalling-proxy", daemon=True)

    def start(self) -> StallingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in (self._listener, *sockets):
            _close(sock)
        self._thread.join(timeout=5)

    def __enter__(self) -> StallingProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def url(self, db: int | str = 0) -> str:
        """A ``redis://`` URL through the proxy."""
        return f"redis://{self.host}:{self.port}/{db}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            try:
                server = socket.create_connection(self._upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._closed:
                    _close(client)
                    _close(server)
                    return
                self._sockets.update((client, server))
            for src, dst, stalled in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, stalled), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, stalled: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                delay = self.delay
                if stalled and delay > 0:
                    self.stalled_chunks += 1
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(src)
                self._sockets.discard(dst)
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv on it
    with contextlib.suppress(OSError):
        sock.close()
