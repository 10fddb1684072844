"""The balancer VM's Debian bookworm root filesystem: built once with mmdebstrap into the lab cache
as a tarball, then unpacked into each VM's own folder under the state directory."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from lab.context import Lab, build_once, run
from lab.errors import LabError

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What a balancer VM needs: systemd as init, sshd for the toolkit, python3 + venv for the balancer
# wheel, iproute2/nftables/keepalived for addresses, VIPs and the pair, ifupdown for persistent
# network configuration in /etc/network/interfaces.
PACKAGES = (
    "systemd-sysv", "dbus", "openssh-server", "python3", "python3-venv", "iproute2", "nftables",
    "keepalived", "ifupdown", "procps", "iputils-ping", "ca-certificates",
)
EXCLUDED_PATHS = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")


def debian_mirror() -> str:
    """The Debian mirror apt on this machine uses (`EXHA_LAB_DEBIAN_MIRROR` overrides)."""
    if env := os.environ.get("EXHA_LAB_DEBIAN_MIRROR"):
        return env
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        uris = re.findall(r"^URIs:\s*(\S+)", text, re.M)
        uris += re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
        for uri in uris:
            if re.search(r"/debian/?$", uri):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def _recipe_key(mirror: str) -> str:
    text = "\n".join([SUITE, mirror, *PACKAGES, *EXCLUDED_PATHS])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def rootfs_tarball(lab: Lab) -> Path:
    """The cached root filesystem tarball, built first with mmdebstrap (about 40 s) when missing."""
    if shutil.which("mmdebstrap") is None:
        raise LabError("mmdebstrap is missing: apt-get install mmdebstrap")
    mirror = debian_mirror()
    cache = lab.cache("vm")
    tarball = cache / f"bookworm-balancer-{_recipe_key(mirror)}.tar.zst"
    return build_once(tarball, lambda: _build(cache, tarball, mirror))


def _build(cache: Path, tarball: Path, mirror: str) -> None:
    tmp = tarball.with_name(tarball.name.replace(".tar.zst", ".tmp.tar.zst"))
    argv = ["mmdebstrap", "--quiet", "--mode=root", "--variant=minbase", f"--include={','.join(PACKAGES)}",
            *(f"--dpkgopt=path-exclude={p}" for p in EXCLUDED_PATHS), SUITE, str(tmp), mirror]
    try:
        run(argv, timeout=900)
    except LabError as e:
        tmp.unlink(missing_ok=True)
        raise LabError(f"building the balancer VM root filesystem from {mirror} failed "
                       f"(set EXHA_LAB_DEBIAN_MIRROR to another mirror?): {e}") from None
    tmp.replace(tarball)
    for old in cache.glob("bookworm-balancer-*.tar.zst"):
        if old != tarball:
            old.unlink(missing_ok=True)


def unpack(tarball: Path, target: Path) -> None:
    """Unpack the tarball into `target` (which must not exist yet), keeping owners and modes."""
    if target.exists():
        raise LabError(f"{target} already exists; remove it first")
    tmp = target.with_name(target.name + ".unpacking")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    run(["tar", "--zstd", "-xpf", str(tarball), "-C", str(tmp), "--numeric-owner"], timeout=300)
    tmp.rename(target)
