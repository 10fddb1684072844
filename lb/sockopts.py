"""Linux socket options the data plane needs: SO_ORIGINAL_DST (port `*`) and IP_TRANSPARENT (client IP kept)."""

from __future__ import annotations

import socket
import struct
from typing import Any

SO_ORIGINAL_DST = 80
IP_TRANSPARENT = 19


def original_dst(sock: Any) -> tuple[str, int]:
    """The destination (address, port) the client dialled before an nftables redirect changed it."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port = struct.unpack_from("!H", raw, 2)[0]
    return socket.inet_ntoa(raw[4:8]), port


def transparent_socket(client_ip: str) -> socket.socket:
    """A non-blocking TCP socket bound to the client's address (needs CAP_NET_ADMIN and tproxy routing)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((client_ip, 0))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
