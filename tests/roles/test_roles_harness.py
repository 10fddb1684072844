"""The fixture harness itself: it passes matching fixtures and fails on every kind of mismatch."""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from harness import Case, check_fact, check_operation, load_cases
from pyinfra import host
from pyinfra.api import operation

from roles.api import ApiCall, JsonFact


class Level(JsonFact[Any]):
    def command(self, tank: str) -> ApiCall:
        return ApiCall("tank.level", tank=tank)


@operation()
def level(tank: str, litres: int) -> Generator[ApiCall, None, None]:
    if host.get_fact(Level, tank=tank) == litres:
        host.noop(f"{tank} already {litres}")
        return
    yield ApiCall("tank.fill", tank=tank, litres=litres)


def case(tmp_path: Path, data: dict[str, Any]) -> Case:
    (tmp_path / "c.json").write_text(json.dumps(data))
    return load_cases(tmp_path)[0]


FACTS = {"Level": {"tank=a": 3}}


def test_matching_fixtures_pass(tmp_path: Path) -> None:
    check_fact(Level, case(tmp_path, {"arg": {"tank": "a"}, "command": {"call": "tank.level",
                                                                        "params": {"tank": "a"}},
                                      "output_json": 3, "fact": 3}))
    check_operation(level, case(tmp_path, {"kwargs": {"tank": "a", "litres": 5}, "facts": FACTS,
                                           "commands": [{"call": "tank.fill",
                                                         "params": {"litres": 5, "tank": "a"}}]}))
    check_operation(level, case(tmp_path, {"kwargs": {"tank": "a", "litres": 3}, "facts": FACTS,
                                           "commands": [], "noop_description": "a already 3"}))


@pytest.mark.parametrize("data", [
    {"kwargs": {"tank": "a", "litres": 5}, "facts": FACTS, "commands": []},
    {"kwargs": {"tank": "a", "litres": 5}, "facts": FACTS,
     "commands": [{"call": "tank.fill", "params": {"litres": 6, "tank": "a"}}]},
    {"kwargs": {"tank": "a", "litres": 3}, "facts": FACTS, "commands": [], "noop_description": "other"},
    {"kwargs": {"tank": "a", "litres": 3}, "facts": FACTS, "commands": []},
    {"kwargs": {"tank": "b", "litres": 3}, "facts": FACTS, "commands": []},
    {"kwargs": {"tank": "a", "litres": 5}, "facts": FACTS, "exception": {"name": "ValueError"}},
], ids=["missing command", "wrong command", "wrong noop", "unexpected noop", "fact not in fixture",
        "expected exception not raised"])
def test_operation_mismatches_fail(tmp_path: Path, data: dict[str, Any]) -> None:
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        check_operation(level, case(tmp_path, data))


@pytest.mark.parametrize("data", [
    {"arg": {"tank": "a"}, "command": {"call": "tank.level", "params": {"tank": "b"}}, "output_json": 3,
     "fact": 3},
    {"arg": {"tank": "a"}, "output_json": 3, "fact": 4},
], ids=["wrong command", "wrong value"])
def test_fact_mismatches_fail(tmp_path: Path, data: dict[str, Any]) -> None:
    with pytest.raises(AssertionError):
        check_fact(Level, case(tmp_path, data))
