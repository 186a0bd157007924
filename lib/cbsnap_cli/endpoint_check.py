"""Does the API endpoint answer at all, before any handler runs?

Without this check an unreachable or mistyped endpoint shows up as one code-6000 result per disk
after the retries, which reads like a cloud outage. One TCP connection (and, for https, one TLS
handshake) tells the user what is wrong in a second.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from cbsnap_cli.errors import UsageError

DEFAULT_CBS_HOST = "cbs.tencentcloudapi.com"  # the SDK's endpoint when CBSNAP_ENDPOINT is unset
TIMEOUT_S = 3.0


def _address(protocol: str, host: str) -> tuple[str, int]:
    parts = urlsplit(f"//{host}")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"CBSNAP_ENDPOINT has a bad port: {host!r}", "a port is 1-65535") from None
    return parts.hostname or host, port or (443 if protocol == "https" else 80)


def check_endpoint(protocol: str, host: str | None, fix: str | None, timeout: float = TIMEOUT_S) -> None:
    """Raise :class:`UsageError` unless ``protocol://host`` accepts a connection (and TLS for https).

    A certificate the local trust store rejects is not judged here: the SDK verifies against its
    own bundle, and its verdict (a 6000 result naming the error) is the one that counts.
    """
    hostname, port = _address(protocol, host or DEFAULT_CBS_HOST)
    where = f"{protocol}://{hostname}:{port}"
    source = "CBSNAP_ENDPOINT" if host else "Tencent Cloud's endpoint: CBSNAP_ENDPOINT is unset"
    try:
        sock = socket.create_connection((hostname, port), timeout=timeout)
    except socket.gaierror as exc:
        raise UsageError(
            f"cannot resolve {hostname} ({source}): {exc.strerror or exc}",
            "check CBSNAP_ENDPOINT (for the emulator: http://127.0.0.1:PORT)" + (f", {fix}" if fix else ""),
        ) from None
    except OSError as exc:
        raise UsageError(
            f"nothing answers at {where} ({source}): {exc.strerror or exc}",
            f"start the emulator (cbsnap emulator --port {port}) or fix CBSNAP_ENDPOINT"
            + (f", {fix}" if fix else ""),
        ) from None
    with sock:
        if protocol != "https":
            return
        context = ssl.create_default_context()
        try:
            with context.wrap_socket(sock, server_hostname=hostname):
                return
        except ssl.SSLCertVerificationError:
            return
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(
                f"{hostname}:{port} does not speak TLS ({getattr(exc, 'reason', None) or exc})",
                f"if it is the emulator, use CBSNAP_ENDPOINT=http://{hostname}:{port}",
            ) from None
