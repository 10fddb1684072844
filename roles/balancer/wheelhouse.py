"""The balancer's wheelhouse, built on the admin host for a VM without internet: a minimal wheel of the `lb`
package alone (deterministic: same sources, same bytes) plus wheels of its runtime dependencies only
(click, uvloop, prometheus-client), pinned to the versions installed here and fetched once into a cache."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from roles.balancer.model import SiteError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DIST_NAME = "exha-lb"
BASE_VERSION = "0.1.0"
RUNTIME_DEPS = ("click", "uvloop", "prometheus-client")
#: the date every file in the wheel carries, so equal sources give an equal wheel
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Target:
    """The VM's Python, for picking binary wheels (uvloop)."""

    python_version: str = "3.11"
    platform: str = "manylinux2014_x86_64"

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")


@dataclass(frozen=True)
class Wheelhouse:
    """Wheels to upload; `digest` changes whenever any of them does; `version` is the lb wheel's version."""

    folder: Path
    files: tuple[Path, ...]
    digest: str
    version: str


def cache_dir() -> Path:
    base = os.environ.get("EXHA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "exchange-ha")
    return Path(base) / "wheelhouse"


def source_root() -> Path:
    """The tree the lb wheel is built from: this checkout, or $EXHA_LB_SOURCE (a tree with lb/ and templates/lb/)."""
    return Path(os.environ.get("EXHA_LB_SOURCE") or PROJECT_ROOT)


def lb_sources(root: Path | None = None) -> dict[str, bytes]:
    """Archive name -> bytes of everything the lb wheel ships: modules, status page, templates
    (templates/lb/ overrides the package's own copies, as the balancer's lookup order does)."""
    root = root or source_root()
    files: dict[str, bytes] = {}
    for path in sorted((root / "lb").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".toml", ".html") and "__pycache__" not in path.parts:
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    for path in sorted((root / "templates" / "lb").glob("*.toml")):
        files[f"lb/_templates/{path.name}"] = path.read_bytes()
    if "lb/cli.py" not in files:
        raise SiteError("the balancer's sources are missing (lb/cli.py)", source=str(root / "lb"),
                        field="EXHA_LB_SOURCE")
    return files


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist_info(version: str) -> dict[str, bytes]:
    requires = "".join(f"Requires-Dist: {d}\n" for d in RUNTIME_DEPS)
    return {
        "METADATA": (f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: {version}\n"
                     "Summary: The exchange-ha load balancer (lb package only)\n"
                     f"Requires-Python: >=3.11\n{requires}").encode(),
        "WHEEL": b"Wheel-Version: 1.0\nGenerator: exchange-ha\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "entry_points.txt": b"[console_scripts]\nexha-lb = lb.cli:main\n",
    }


def build_lb_wheel(folder: Path) -> Path:
    """Write the lb wheel into `folder` (version 0.1.0+<source hash>) unless it is already there."""
    sources = lb_sources()
    src_hash = hashlib.sha256(b"".join(name.encode() + b"\0" + data for name, data in sources.items())).hexdigest()
    version = f"{BASE_VERSION}+{src_hash[:12]}"
    wheel = folder / f"{DIST_NAME.replace('-', '_')}-{version}-py3-none-any.whl"
    if wheel.exists():
        return wheel
    info_dir = f"{DIST_NAME.replace('-', '_')}-{version}.dist-info"
    entries = dict(sources)
    entries.update({f"{info_dir}/{k}": v for k, v in _dist_info(version).items()})
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries.items())
    record += f"{info_dir}/RECORD,,\n"
    entries[f"{info_dir}/RECORD"] = record.encode()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    tmp.replace(wheel)
    return wheel


def _pins() -> list[str]:
    pins = []
    for dep in RUNTIME_DEPS:
        try:
            pins.append(f"{dep}=={metadata.version(dep)}")
        except metadata.PackageNotFoundError:
            raise SiteError(f"{dep} is not installed on the admin host; install the project first "
                                  "(pip install -e .)", source="wheelhouse", field=dep) from None
    return pins


def fetch_dependencies(folder: Path, target: Target) -> list[Path]:
    """Binary wheels of the runtime dependencies for `target`, downloaded once into `folder`."""
    pins = _pins()
    marker = folder / (".deps-" + hashlib.sha256("\n".join([*pins, target.python_version, target.platform])
                                                   .encode()).hexdigest()[:12])
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                "--only-binary=:all:", "--python-version", target.python_version, "--implementation", "cp",
                "--abi", target.abi, "--abi", "abi3", "--abi", "none", "--platform", target.platform,
                "--platform", "any", "--dest", str(folder), *pins]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise SiteError(f"pip download of {', '.join(pins)} failed: {last}", source="wheelhouse",
                                  field="dependencies")
        marker.write_text("\n".join(pins) + "\n")
    versions = {p.split("==")[0].replace("-", "_").lower(): p.split("==")[1] for p in pins}

    def pinned(wheel: Path) -> bool:
        dist, version = wheel.name.split("-")[:2]
        return versions.get(dist.lower()) == version

    return [w for w in sorted(folder.glob("*.whl")) if pinned(w)]


def build(target: Target = Target(), folder: Path | None = None) -> Wheelhouse:
    """The wheelhouse for `target`: the lb wheel (rebuilt only when its sources change) and its dependencies."""
    folder = folder or cache_dir() / f"{target.abi}-{target.platform}"
    deps = fetch_dependencies(folder, target)
    lb_wheel = build_lb_wheel(folder)
    files = tuple(sorted([lb_wheel, *deps], key=lambda p: p.name))
    digest = hashlib.sha256(b"".join(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest()
                                     for p in files)).hexdigest()
    version = lb_wheel.name.split("-")[1]
    return Wheelhouse(folder=folder, files=files, digest=digest, version=version)
