"""Command line: `python -m lab.asa_sim --listen ADDR --port 22 --state DIR ...` runs the ASA simulator."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from lab.asa_sim.server import AsaSettings, StartError, serve


def _parse(argv: list[str] | None) -> AsaSettings:
    p = argparse.ArgumentParser(prog="python -m lab.asa_sim", description="Cisco ASA simulator over SSH")
    p.add_argument("--listen", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=22, help="SSH port")
    p.add_argument("--state", type=Path, required=True, help="state folder (startup-config, log, host key)")
    p.add_argument("--hostname", default="asa1", help="hostname when the configuration has none")
    p.add_argument("--username", default="admin")
    p.add_argument("--password", help="login password (or $ASA_SIM_PASSWORD)")
    p.add_argument("--enable-secret", help="enable secret (or $ASA_SIM_ENABLE_SECRET)")
    p.add_argument(
        "--initial-config", type=Path, help="configuration used when the state has no startup-config"
    )
    a = p.parse_args(argv)
    password = a.password or os.environ.get("ASA_SIM_PASSWORD")
    secret = a.enable_secret or os.environ.get("ASA_SIM_ENABLE_SECRET")
    if not password or not secret:
        p.error("--password and --enable-secret (or $ASA_SIM_PASSWORD / $ASA_SIM_ENABLE_SECRET) are required")
    if a.initial_config is not None and not a.initial_config.is_file():
        p.error(f"--initial-config: {a.initial_config} is not a readable file")
    if not 0 < a.port < 65536:
        p.error(f"--port: expected 1-65535, got {a.port}")
    return AsaSettings(
        listen=a.listen,
        port=a.port,
        state=a.state,
        hostname=a.hostname,
        username=a.username,
        password=password,
        enable_secret=secret,
        initial_config=a.initial_config,
    )


def main(argv: list[str] | None = None) -> int:
    settings = _parse(argv)
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 0
    except StartError as e:
        print(f"asa_sim: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
