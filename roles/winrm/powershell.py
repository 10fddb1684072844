"""PowerShell text handling: quoting literals into scripts, reading `ConvertTo-Json -Compress`
output, and turning CLIXML error streams into plain one-line messages."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

#: suffix every fact script ends with, so facts read JSON and never formatted tables
TO_JSON = " | ConvertTo-Json -Compress"

_CLIXML_HEADER = "#< CLIXML"
# PowerShell treats the typographic single quotes as quote characters too
_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
_ESCAPED_CHAR = re.compile(r"_x([0-9A-Fa-f]{4})_")
_POSITION = re.compile(r"At (line:\d|char:\d|[A-Za-z]:\\)")
_NAMESPACE = re.compile(r"\sxmlns(:\w+)?=\"[^\"]*\"")


class JsonOutputError(ValueError):
    """Script output that is not the JSON a fact expects."""


def quote(value: str) -> str:
    """A single-quoted PowerShell literal for `value` (no expansion of `$` or backticks)."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"{value!r}: line breaks and NUL are not allowed in PowerShell arguments")
    out = "".join(ch * 2 if ch in _SINGLE_QUOTES else ch for ch in value)
    return f"'{out}'"


def parse_json(lines: Iterable[str]) -> Any:
    """Parse `ConvertTo-Json` output; empty output is None."""
    text = "\n".join(lines).strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise JsonOutputError(f"not JSON ({e.msg} at char {e.pos}): {text[:80]!r}") from e


def parse_json_documents(lines: Iterable[str]) -> list[Any]:
    """Output of several `ConvertTo-Json -Compress` statements: one JSON document per line."""
    return [parse_json([line]) for line in lines if line.strip()]


def as_list(data: Any) -> list[dict[str, Any]]:
    """`ConvertTo-Json` prints one object bare and several as an array; always give a list of objects."""
    if data is None:
        return []
    items = data if isinstance(data, list) else [data]
    for item in items:
        if not isinstance(item, dict):
            raise JsonOutputError(f"expected JSON objects, got {item!r}")
    return items


def clean_error(stderr: str) -> str:
    """Plain text of a PowerShell error stream: CLIXML `<S S="Error">` records joined, one line."""
    text = stderr.strip()
    if text.startswith(_CLIXML_HEADER):
        text = _clixml_text(text[len(_CLIXML_HEADER):].strip()) or text
    return _one_line(text)


def _clixml_text(xml: str) -> str:
    try:
        root = ET.fromstring(_NAMESPACE.sub("", xml))
    except ET.ParseError:
        return ""
    errors = [s.text or "" for s in root.iter("S") if s.get("S") == "Error"]
    if not errors:  # some hosts tag every record plainly
        errors = [s.text or "" for s in root.iter("S")]
    return "".join(_ESCAPED_CHAR.sub(lambda m: chr(int(m.group(1), 16)), e) for e in errors)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines()]
    # PowerShell appends "At line:1 char:1", "+ CategoryInfo ..." context: keep the message itself
    kept = [line for line in lines if line and not line.startswith("+") and not _POSITION.match(line)]
    return " ".join(kept) if kept else " ".join(line for line in lines if line)
