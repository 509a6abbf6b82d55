"""Run the app with uvicorn on one socket, one worker (the run is loaded in this process)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from scenesense.utils.extras import require_extra

uvicorn = require_extra("uvicorn", "serve", "scenesense serve")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.1``, ``::1``): reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port; see ``getsockname()``).

    Raises:
        OSError: the address cannot be used (in use, not this machine's, no permission).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_server(app: Any, sock: socket.socket, log_level: str = "info") -> None:  # noqa: ANN401
    """Serve ``app`` on ``sock`` until interrupted (Ctrl-C or SIGTERM: open requests finish first).

    Raises:
        KeyboardInterrupt: after a graceful shutdown on Ctrl-C.
    """
    config = uvicorn.Config(app, log_level=log_level, server_header=False, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])
