"""Find and read virtual-service templates (TOML data): the repository's templates/lb/ first, then the copy
shipped inside the package (lb/_templates/)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lb.errors import TemplateError

PACKAGE_DIR = Path(__file__).resolve().parent / "_templates"
REPO_DIR = Path(__file__).resolve().parent.parent / "templates" / "lb"


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    data: dict[str, Any]


def search_dirs(extra: tuple[Path, ...] = ()) -> tuple[Path, ...]:
    """Directories searched for templates, in order."""
    return tuple(extra) + tuple(d for d in (REPO_DIR, PACKAGE_DIR) if d.is_dir())


def available(extra: tuple[Path, ...] = ()) -> list[str]:
    """Names of every template that can be found."""
    names = {p.stem for d in search_dirs(extra) for p in d.glob("*.toml")}
    return sorted(names)


def load_template(name: str, extra: tuple[Path, ...], file: str, field: str) -> Template:
    """Read template `name`; errors name the config file and field that asked for it."""
    if not name or "/" in name or name.startswith("."):
        raise TemplateError(file, field, "expected a template name", name)
    for d in search_dirs(extra):
        path = d / f"{name}.toml"
        if path.is_file():
            try:
                return Template(name, path, tomllib.loads(path.read_text()))
            except tomllib.TOMLDecodeError as exc:
                raise TemplateError(str(path), "", f"template is not valid TOML ({exc})") from exc
    raise TemplateError(file, field, f"unknown template; available: {', '.join(available(extra)) or 'none'}", name)
