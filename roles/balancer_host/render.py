"""Render the balancer VM's system files (interfaces, VIPs, hosts, resolv.conf) from templates/balancer/ with
jinja2, and the shell command that replaces a file atomically with given content."""

from __future__ import annotations

import json
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "balancer"


def toml_value(value: Any) -> str:
    """A TOML literal for a string, number, boolean or list of those (a JSON literal is valid TOML for these)."""
    if isinstance(value, float) and value != value:  # NaN has no TOML form the balancer accepts
        raise ValueError("NaN is not a valid setting")
    return json.dumps(value)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=False, autoescape=False)
    env.filters["toml"] = toml_value
    return env


def render(template: str, **values: Any) -> str:
    """The rendered text of templates/balancer/<template>, ending in exactly one newline."""
    return environment().get_template(template).render(**values).rstrip("\n") + "\n"


def same_text(current: str | None, wanted: str) -> bool:
    """Whether a file's current text (None: absent) already is `wanted`, ignoring trailing blank lines."""
    return current is not None and current.rstrip("\n") == wanted.rstrip("\n")


def write_file(path: str, text: str, mode: str = "0644", owner: str = "root", group: str = "root") -> str:
    """A shell command that replaces `path` with `text` atomically (temp file beside it, then rename)."""
    tmp = f"{path}.exha-new"
    return (f"printf %s {shlex.quote(text)} > {shlex.quote(tmp)} && chown {owner}:{group} {shlex.quote(tmp)}"
            f" && chmod {mode} {shlex.quote(tmp)} && mv -f {shlex.quote(tmp)} {shlex.quote(path)}")


def text_lines(text: str | None) -> list[str]:
    """A file's text as lines for a diff ('(absent)' when missing)."""
    return ["(absent)"] if text is None else text.rstrip("\n").splitlines()
