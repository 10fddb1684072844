"""Facts read from a Cisco ASA: its network objects and the NAT statements that use them.

Each fact sends one `asa.show` call (a list of `show` commands run in privileged mode) and parses the
device's text. From the command line::

    pyinfra inventory/lab.py fact roles.asa.facts.NetworkObjects --limit firewalls
    pyinfra inventory/lab.py fact roles.asa.facts.NetworkObject object_name=EXCH-SMTP --limit firewalls
"""

from __future__ import annotations

from typing import Any, TypedDict

from roles.api import ApiCall, JsonFact
from roles.asa.config import ObjectState, parse_objects

SHOW_OBJECTS = "show running-config object network"
SHOW_NAT = "show running-config nat"
SHOW_STARTUP = "show startup-config"


class ObjectFact(TypedDict):
    """One object in the running and the startup configuration (None where it is absent)."""

    running: ObjectState | None
    startup: ObjectState | None


def _lines(data: dict[str, Any], command: str) -> list[str]:
    return [str(line) for line in data.get(command, [])]


class NetworkObjects(JsonFact[dict[str, ObjectState]]):
    """Returns every network object in the running-config with the NAT statements that use it::

        {"EXCH-SMTP": {"kind": "host", "value": "10.0.0.23",
                       "nat": ["nat (inside,outside) static 198.51.100.25 service tcp smtp smtp"]}}
    """

    @staticmethod
    def default() -> dict[str, ObjectState]:
        return {}

    def command(self) -> ApiCall:
        return ApiCall("asa.show", commands=[SHOW_OBJECTS, SHOW_NAT])

    def parse(self, data: Any) -> dict[str, ObjectState]:
        defined = parse_objects(_lines(data, SHOW_OBJECTS))
        with_nat = parse_objects(_lines(data, SHOW_OBJECTS) + _lines(data, SHOW_NAT))
        return {obj_name: with_nat[obj_name] for obj_name in defined}


class NetworkObject(JsonFact[ObjectFact]):
    """Returns one network object as the running-config and the startup-config hold it::

        {"running": {"kind": "host", "value": "10.0.0.28", "nat": ["nat (inside,outside) static ..."]},
         "startup": {"kind": "host", "value": "10.0.0.23", "nat": [...]}}      # unsaved change

    `running` / `startup` is None where the object does not exist.
    """

    @staticmethod
    def default() -> ObjectFact:
        return {"running": None, "startup": None}

    def command(self, object_name: str) -> ApiCall:
        return ApiCall("asa.show", commands=[f"{SHOW_OBJECTS} {object_name}", SHOW_NAT, SHOW_STARTUP])

    def parse(self, data: Any) -> ObjectFact:
        shown = data
        prefix = f"{SHOW_OBJECTS} "
        object_name = next((c[len(prefix):] for c in shown if c.startswith(prefix)), "")
        defined = parse_objects(_lines(shown, f"{SHOW_OBJECTS} {object_name}"))
        running = None
        if object_name in defined:
            running = parse_objects(_lines(shown, f"{SHOW_OBJECTS} {object_name}")
                                    + _lines(shown, SHOW_NAT))[object_name]
        startup_objects = parse_objects(_lines(shown, SHOW_STARTUP))
        startup = startup_objects.get(object_name)
        if startup is not None and startup["kind"] is None and not startup["nat"]:
            startup = None
        return {"running": running, "startup": startup}
