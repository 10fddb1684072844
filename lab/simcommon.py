"""Starting a device simulator as a lab daemon: spawn it in its host's namespace and wait until each
of its ports answers, or fail with one line that names the host and the daemon's log."""

from __future__ import annotations

from collections.abc import Sequence

from lab.context import Lab, tcp_open
from lab.topology import LabHost


def spawn_simulator(
    lab: Lab,
    host: LabHost,
    daemon: str,
    argv: list[str],
    env: dict[str, str],
    ports: Sequence[int],
    what: str,
    timeout: float,
) -> None:
    """Run `argv` as daemon `daemon` in `host`'s namespace (no-op if it already runs) and wait up to
    `timeout` seconds per port for `ports` to accept TCP on the host's address."""
    lab.spawn(daemon, host.namespace, argv, env=env, cwd=lab.project_root)
    for port in ports:
        lab.wait_ready(
            lambda port=port: tcp_open(host.address, port, namespace=host.namespace), timeout,
            f"{host.name}: the {what} did not come up on {host.address}:{port}; "
            f"see {lab.logs / (daemon + '.log')}",
            daemon=daemon,
        )
