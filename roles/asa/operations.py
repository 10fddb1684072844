"""Operations on a Cisco ASA: give a network object its address, create or remove it, keep it saved.

Objects that NAT statements use are changed in place, so the NAT keeps pointing at the object.
"""

from __future__ import annotations

from collections.abc import Generator

from pyinfra import context
from pyinfra.api import operation

from roles.api import ApiCall, show_diff
from roles.asa.config import ObjectState, desired_address, object_lines, same_object
from roles.asa.facts import NetworkObject
from roles.errors import OperationInputError


@operation()
def network_object(
    object_name: str,
    host: str | None = None,
    subnet: str | None = None,
    ip_range: str | None = None,
    present: bool = True,
    save: bool = True,
    backup_dir: str = "backups/asa",
) -> Generator[ApiCall, None, None]:
    """
    Give an `object network` one address (host, subnet or range), or remove it.

    + object_name: the object's name, e.g. EXCH-SMTP
    + host: one IPv4 address, e.g. 10.0.0.28
    + subnet: "10.0.0.0 255.255.255.0" or "10.0.0.0/24"
    + ip_range: "10.0.0.20 10.0.0.29" or "10.0.0.20-10.0.0.29"
    + present: False removes the object (the ASA refuses while an access-list or twice NAT uses it)
    + save: `write memory` after the change; an unsaved but converged object is saved too
    + backup_dir: local folder for the object's config as it was, written just before the change

    Examples:

    .. code:: python

        asa.network_object(name="SMTP to the VIP", object_name="EXCH-SMTP", host="10.0.0.28")
    """
    try:
        address = _validate(object_name, host, subnet, ip_range, present)
    except OperationInputError as e:   # re-raised here: pyinfra names this module in its one-line error
        raise OperationInputError(e.cause, **e.fields) from None
    target = context.host
    fact = target.get_fact(NetworkObject, object_name=object_name)
    running, startup = fact["running"], fact["startup"]
    desired: ObjectState | None = None
    if address is not None:
        desired = {"kind": address[0], "value": address[1], "nat": list(running["nat"]) if running else []}

    lines: list[str]
    if same_object(running, desired):
        if not save or same_object(running, startup):
            target.noop(_converged(object_name, running))
            return
        lines = []
        _diff(target, f"object network {object_name} (unsaved: startup-config)",
              object_lines(object_name, startup), object_lines(object_name, running))
    else:
        if desired is None:
            lines = [f"no object network {object_name}"]
        else:
            lines = [f"object network {object_name}", f" {desired['kind']} {desired['value']}"]
        _diff(target, f"object network {object_name}", object_lines(object_name, running),
              object_lines(object_name, desired))
    yield ApiCall("asa.network_object", object_name=object_name, lines=lines, expect=desired, save=save,
                  backup_dir=backup_dir)


def _validate(object_name: str, host: str | None, subnet: str | None, ip_range: str | None,
              present: bool) -> tuple[str, str] | None:
    """The (kind, value) to configure, None for removal; bad arguments raise OperationInputError."""
    if not object_name or any(c.isspace() for c in object_name) or len(object_name) > 64:
        raise OperationInputError(f"{object_name!r} is not an ASA object name (1-64 characters, no spaces)",
                                  field="object_name")
    if present:
        return desired_address(host, subnet, ip_range)
    if host or subnet or ip_range:
        raise OperationInputError("an address makes no sense with present=False", field="present")
    return None


def _diff(target: object, label: str, before: list[str], after: list[str]) -> None:
    """Show only the lines that change (an unchanged NAT line is not news)."""
    show_diff(target, label, [line for line in before if line not in after],
              [line for line in after if line not in before])


def _converged(object_name: str, running: ObjectState | None) -> str:
    if running is None:
        return f"object network {object_name} already absent"
    return f"object network {object_name} already {running['kind']} {running['value']}"
