"""The component list: lazy loading with notes for missing parts, and a component's unexpected
exception turned into one line naming it (traceback kept in the lab's log)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.components import COMPONENTS, Loaded, bring_up, collect_status, load, mask_secrets
from lab.context import Lab, ServiceStatus
from lab.errors import LabError
from lab.network import NetworkComponent

ScratchFactory = Callable[..., Lab]


pytestmark = pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning")


class Broken:
    """A component with a bug: its start and status raise something that is not a LabError."""

    name = "broken"

    def build(self, lab: Lab) -> None:
        pass

    def start(self, lab: Lab) -> None:
        raise RuntimeError("boom")

    def status(self, lab: Lab) -> list[ServiceStatus]:
        raise KeyError("missing")

    def stop(self, lab: Lab) -> None:
        pass


def test_components_load_in_order_and_skip_missing_modules() -> None:
    loaded = load(
        (
            "lab.network:NetworkComponent",
            "lab.no_such_module.component:Thing",
            "lab.dns:NoSuchClass",
            "lab.dns:DnsComponent",
        )
    )
    assert [c.name for c in loaded.components] == ["network", "dns"]
    assert len(loaded.notes) == 2
    assert "lab.no_such_module" in loaded.notes[0] and "NoSuchClass" in loaded.notes[1]
    assert COMPONENTS[:3] == (
        "lab.network:NetworkComponent",
        "lab.dns:DnsComponent",
        "lab.exchange:ExchangeComponent",
    )


def test_a_missing_dependency_inside_a_component_is_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "exha_fake_component.py"
    pkg.write_text("import exha_no_such_dependency\nclass C:\n    name = 'c'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="exha_no_such_dependency"):
        load(("exha_fake_component:C",))


def test_unexpected_exception_becomes_one_line(make_scratch: ScratchFactory) -> None:
    lab = make_scratch()
    with pytest.raises(LabError) as e:
        bring_up(lab, Loaded((Broken(),), ()))
    assert str(e.value).startswith("broken: start failed: RuntimeError: boom")
    assert "\n" not in str(e.value)
    log = lab.logs / "lab-errors.log"
    assert "Traceback" in log.read_text() and "RuntimeError: boom" in log.read_text()
    if os.geteuid() != 0:
        return  # status checks only run with the lab network up, which needs root
    NetworkComponent().start(lab)
    [_, st] = collect_status(lab, Loaded((NetworkComponent(), Broken()), ()))[-2:]
    assert st.state == "down" and "KeyError" in st.detail


def test_mask_secrets() -> None:
    masked = mask_secrets(
        {
            "username": "root",
            "password": "p",
            "enable_secret": "e",
            "tsig_secret": "t",
            "tsig_name": "k",
            "key_file": "/x",
            "password_empty": "",
        }
    )
    assert masked == {
        "username": "root",
        "password": "********",
        "enable_secret": "********",
        "tsig_secret": "********",
        "tsig_name": "k",
        "key_file": "/x",
        "password_empty": "",
    }
