"""Step barriers. pyinfra orders operations as a graph of each host's own sequence, so an operation on the
DNS server would otherwise be free to run in the first round, beside the balancer's first operation. A
barrier is an operation every host runs (a noop that needs no connection): each host's later operations come
after it, and it comes after every earlier operation of every host, so steps run strictly one after another."""

from __future__ import annotations

from collections.abc import Generator

from pyinfra import host
from pyinfra.api import operation


@operation()
def barrier(step: str) -> Generator[str, None, None]:
    """
    Wait here until every host has finished the operations before it.

    + step: what comes next, for the log

    Examples:

    .. code:: python

        steps.barrier(name="Step 4: repoint DNS", step="repoint DNS")
    """
    host.noop(f"every host finished the steps before: {step}")
    return
    yield  # a generator that yields nothing
