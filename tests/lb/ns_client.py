"""A client run inside a test's network namespace (ip netns exec NS python ns_client.py ...); prints one result.

    line ADDRESS PORT [SOURCE]   first line the server sends
    https ADDRESS PORT PATH      X-Server header of a GET over TLS
    state ADMIN                  the balancer's JSON state
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import urllib.request


def main(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "line":
        src = (argv[3], 0) if len(argv) > 3 else None
        with socket.create_connection((argv[1], int(argv[2])), timeout=5, source_address=src) as s:
            print(s.makefile("rb").readline().decode().strip())
    elif kind == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((argv[1], int(argv[2])), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="outlook.corp.example") as s:
                s.sendall(f"GET {argv[3]} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        for line in data.decode().split("\r\n"):
            if line.lower().startswith("x-server:"):
                print(line.split(":", 1)[1].strip())
    elif kind == "state":
        with urllib.request.urlopen(f"http://{argv[1]}/api/state", timeout=5) as r:
            print(json.dumps(json.loads(r.read())))


if __name__ == "__main__":
    main(sys.argv[1:])
