"""Entry point: `python -m lab.exchange_standin --name EX13-1 --fqdn … --folder … --cert … --key …`."""

from __future__ import annotations

import argparse
import asyncio

from lab.exchange_standin.server import serve, settings_from


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m lab.exchange_standin")
    ap.add_argument("--name", required=True, help="NetBIOS-style server name, e.g. EX13-1")
    ap.add_argument("--fqdn", required=True)
    ap.add_argument("--folder", required=True, help="state folder (mail store, maintenance flag)")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--access-log", action="store_true", help="log one line per HTTP request")
    settings = settings_from(ap.parse_args())
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings))


if __name__ == "__main__":
    main()
