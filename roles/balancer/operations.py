"""Operations that install and configure the bundled balancer on its VM: the venv from the uploaded
wheelhouse (only when the wheels changed), the TOML config (checked with `exha-lb check` on the host before it
replaces the live file) and the hardened systemd unit."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

from pyinfra import host
from pyinfra.api import operation

from roles.api import show_diff
from roles.balancer_host.facts import Account, FileText
from roles.balancer_host.render import same_text, text_lines, write_file
from roles.winrm.inputs import InputError

BASE = "/opt/exha-lb"
UNIT_PATH = "/etc/systemd/system/exha-lb.service"


def _path(value: Any, field: str) -> str:
    text = str(value or "")
    if not text.startswith("/") or any(c.isspace() for c in text) or ".." in text.split("/"):
        raise InputError(f"expected an absolute path without spaces, got {value!r}", field=field)
    return text


@operation()
def system_user(user: str = "exha-lb") -> Iterator[Any]:
    """
    A system user and group of the same name for the balancer: no login, no home.

    + user: the user (and group) name

    Example:

    .. code:: python

        balancer.system_user(user="exha-lb")
    """
    if not user or not all(c.isalnum() or c in "-_" for c in user) or user[0] == "-":
        raise InputError(f"expected a user name, got {user!r}", field="user")
    if host.get_fact(Account, user=user) is not None:
        host.noop(f"user {user} exists")
        return
    yield (f"getent group {user} >/dev/null || groupadd --system {user}; useradd --system --gid {user} "
           f"--home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin {user}")


@operation()
def package(version: str, digest: str, wheel_dir: str = f"{BASE}/wheelhouse",
            venv: str = f"{BASE}/venv") -> Iterator[Any]:
    """
    Install the balancer (`exha-lb==version`) into a venv from the uploaded wheelhouse, without an index;
    only when the wheelhouse's digest differs from the one recorded at the last install.

    + version: the lb wheel's version
    + digest: sha256 over every wheel in the wheelhouse
    + wheel_dir: where the wheels were uploaded
    + venv: the venv to install into

    Example:

    .. code:: python

        balancer.package(version=wh.version, digest=wh.digest)
    """
    if not version or any(c.isspace() for c in version):
        raise InputError(f"expected a version, got {version!r}", field="version")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InputError(f"expected a sha256 hex digest, got {digest!r}", field="digest")
    wheels, env = _path(wheel_dir, "wheel_dir"), _path(venv, "venv")
    marker = f"{env}/installed.sha256"
    installed = host.get_fact(FileText, path=marker)
    if same_text(installed, digest):
        host.noop(f"exha-lb {version} already installed (wheelhouse {digest[:12]})")
        return
    show_diff(host, "balancer wheelhouse", [f"installed: {(installed or '(none)').strip()[:12]}"],
              [f"installed: {digest[:12]} (exha-lb {version})"])
    yield (f"test -x {env}/bin/python || python3 -m venv {env}; "
           f"{env}/bin/python -m pip install --quiet --disable-pip-version-check --no-index "
           f"--find-links {wheels} --upgrade {shlex.quote('exha-lb==' + version)}"
           f" && echo {digest} > {marker}")


@operation()
def config(text: str, path: str = "/etc/exha-lb/exha-lb.toml", group: str = "exha-lb",
           venv: str = f"{BASE}/venv") -> Iterator[Any]:
    """
    The balancer's TOML config: written beside the live file, checked with `exha-lb check` on the host, and
    only then moved over the live file. A config the balancer refuses fails this operation and leaves the live
    file (and the running balancer) as they were.

    + text: the rendered config (no secrets: the admin token lives in its own 0600 file)
    + path: the live config file
    + group: group that may read it (the balancer's user)
    + venv: the balancer's venv

    Example:

    .. code:: python

        balancer.config(text=render_config(...))
    """
    live, env = _path(path, "path"), _path(venv, "venv")
    new = f"{live}.new"
    have = host.get_fact(FileText, path=live)
    if same_text(have, text):
        host.noop(f"{live} already up to date")
        return
    show_diff(host, live, text_lines(have), text_lines(text))
    stage = write_file(new, text, mode="0640", group=group)
    yield (f"{stage} && {{ {env}/bin/exha-lb check --config {shlex.quote(new)} || "
           f"{{ rm -f {shlex.quote(new)}; exit 1; }}; }} && mv -f {shlex.quote(new)} {shlex.quote(live)}")


@operation()
def unit(text: str, path: str = UNIT_PATH) -> Iterator[Any]:
    """
    The balancer's systemd unit; systemd re-reads units after a change.

    + text: the rendered unit
    + path: where it goes

    Example:

    .. code:: python

        balancer.unit(text=render("exha-lb.service.j2", ...))
    """
    target = _path(path, "path")
    have = host.get_fact(FileText, path=target)
    if same_text(have, text):
        host.noop(f"{target} already up to date")
        return
    show_diff(host, target, text_lines(have), text_lines(text))
    yield f"{write_file(target, text)} && systemctl daemon-reload"


@operation()
def system_file(path: str, text: str, mode: str = "0644", after: str = "") -> Iterator[Any]:
    """
    A root-owned file with this exact text; `after` runs once the file changed (e.g. a reload).

    + path: the file
    + text: its content (never a secret: it is shown under --diff)
    + mode: its mode
    + after: a shell command to run after a change

    Example:

    .. code:: python

        balancer.system_file(path="/etc/sysctl.d/60-exha-lb.conf", text=..., after="sysctl -q -p ...")
    """
    target = _path(path, "path")
    if len(mode) != 4 or any(c not in "01234567" for c in mode):
        raise InputError(f"expected an octal mode such as 0644, got {mode!r}", field="mode")
    have = host.get_fact(FileText, path=target)
    if same_text(have, text):
        host.noop(f"{target} already up to date")
        return
    show_diff(host, target, text_lines(have), text_lines(text))
    parent = target.rsplit("/", 1)[0] or "/"
    yield f"mkdir -p {parent} && {write_file(target, text, mode=mode)}" + (f" && {after}" if after else "")
