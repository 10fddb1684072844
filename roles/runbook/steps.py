"""Step barriers. pyinfra orders operations as a graph of each host's own sequence, so an operation on the
DNS server would otherwise be free to run in the first round, beside the balancer's first operation. A
barrier is an operation every host runs: each host's later operations come after it, and it comes after
every earlier operation of every host, so steps run strictly one after another.

A barrier also stops the run: when any host failed in an earlier step, it fails every remaining host, so
nothing after a failed step runs anywhere (pyinfra would otherwise carry on with the hosts that did not fail;
a deploy file cannot set FAIL_PERCENT, pyinfra resets config changes made while loading it).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pyinfra import host, logger, state
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.state import StateStage


def _stop(state: Any, host: Any, step: str, failed: list[str]) -> bool:
    host.log(f"stopped before {step}: {', '.join(failed)} failed in an earlier step; nothing more runs",
             logger.error)
    return False


@operation()
def barrier(step: str) -> Generator[FunctionCommand, None, None]:
    """
    Wait here until every host has finished the operations before it; fail if any of them failed.

    + step: what comes next, for the log

    Examples:

    .. code:: python

        steps.barrier(name="Step 4: repoint DNS", step="repoint DNS")
    """
    failed = sorted(h.name for h in state.failed_hosts)
    if state.current_stage == StateStage.Execute and failed:
        yield FunctionCommand(_stop, (step, failed), {})
        return
    host.noop(f"every host finished the steps before: {step}")
