"""Fixtures for the balancer VM tests: the scratch lab of balancer_lab.py, up for the module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from balancer_lab import PREFIX, BalancerLab, scratch_toml, skip_reason

from lab.components import Loaded, bring_up, leftovers, tear_down
from lab.context import Lab
from lab.exchange import ExchangeComponent
from lab.network import NetworkComponent, lab_namespaces
from lab.topology import load_topology
from lab.vm.component import BalancerVMComponent
from lab.vsphere.component import VSphereComponent

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def balancer_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BalancerLab]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("balancer-lab")
    # build the balancer from a snapshot of the sources, so edits to lb/ during the run are not a code change
    source = folder / "lb-source"
    shutil.copytree(ROOT / "lb", source / "lb", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "templates" / "lb", source / "templates" / "lb")
    os.environ["EXHA_LB_SOURCE"] = str(source)
    if lab_namespaces(PREFIX):
        pytest.fail(f"namespaces {PREFIX}* already exist (another run with the same slot?); not touching them")
    (folder / "topology.toml").write_text(scratch_toml())
    lab = Lab(load_topology(folder / "topology.toml"), state_dir=folder / "state")  # shared image cache
    components = (NetworkComponent(), ExchangeComponent(), VSphereComponent(), BalancerVMComponent())
    try:
        bring_up(lab, Loaded(components, ()))  # type: ignore[arg-type]
        yield BalancerLab(lab, components, folder)
    finally:
        os.environ.pop("EXHA_LB_SOURCE", None)
        tear_down(lab, Loaded(components, ()))  # type: ignore[arg-type]
        left = leftovers(lab) + [f"namespace {n}" for n in lab_namespaces(PREFIX)]
        assert not left, f"the scratch lab left: {left}"
