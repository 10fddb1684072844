"""Build the vSphere simulator binary from Debian's govmomi source, offline, into the lab cache.

The govmomi tree is copied into a private GOPATH in the cache and patched there (the system copy
under /usr/share/gocode is never touched). The binary is rebuilt only when main.go, the patch or
the govmomi source version change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from lab.context import Lab, build_once, run
from lab.errors import LabError

SYSTEM_GOPATH = Path("/usr/share/gocode")
GOVMOMI = SYSTEM_GOPATH / "src/github.com/vmware/govmomi"
HERE = Path(__file__).resolve().parent
MAIN_GO = HERE / "main.go"
PATCHES = (HERE / "fetch-unset-empty.patch",)
MAIN_PACKAGE = "exhalab/vspheresim"


def _source_key() -> str:
    """A hash of everything that goes into the binary that the lab controls or may change."""
    h = hashlib.sha256()
    for p in (MAIN_GO, *PATCHES):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    version = GOVMOMI / "go.mod"
    h.update(str(version.stat().st_mtime_ns).encode() if version.exists() else b"-")
    return h.hexdigest()[:16]


def _prepare_gopath(root: Path) -> Path:
    """Fresh private GOPATH: a patched copy of govmomi plus the lab's main package."""
    if root.exists():
        shutil.rmtree(root)
    tree = root / "src/github.com/vmware/govmomi"
    shutil.copytree(GOVMOMI, tree, symlinks=True)
    for patch in PATCHES:
        run(["patch", "-p1", "--quiet", "--forward", "-d", str(tree), "-i", str(patch)])
    main_dir = root / "src" / MAIN_PACKAGE
    main_dir.mkdir(parents=True)
    shutil.copy2(MAIN_GO, main_dir / "main.go")
    return root


def simulator_binary(lab: Lab) -> Path:
    """Path of the built simulator, building it first (about 20 s) when missing or out of date."""
    if not GOVMOMI.is_dir():
        raise LabError(f"{GOVMOMI} is missing: apt-get install golang-github-vmware-govmomi-dev golang-go")
    if shutil.which("go") is None:
        raise LabError("the Go compiler is missing: apt-get install golang-go")
    cache = lab.cache("vsphere")
    binary = cache / f"vspheresim-{_source_key()}"
    return build_once(binary, lambda: _build(lab, cache, binary))


def _build(lab: Lab, cache: Path, binary: Path) -> None:
    gopath = _prepare_gopath(cache / "gopath")
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{gopath}:{SYSTEM_GOPATH}",
        "GOCACHE": str(lab.cache("vsphere", "gocache")),
        "GOFLAGS": "",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
    }
    tmp = binary.with_suffix(".tmp")
    cp = subprocess.run(["go", "build", "-o", str(tmp), MAIN_PACKAGE], env=env, capture_output=True,
                        text=True, timeout=600)
    if cp.returncode != 0:
        raise LabError(f"building the vSphere simulator failed: {(cp.stderr or cp.stdout).strip()[-2000:]}")
    tmp.replace(binary)
    for old in cache.glob("vspheresim-*"):
        if old != binary:
            old.unlink(missing_ok=True)
