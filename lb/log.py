"""Named loggers for the balancer and the one-line structured event format."""

from __future__ import annotations

import logging
import sys
import time

root = logging.getLogger("exha.lb")
root.addHandler(logging.NullHandler())
access = logging.getLogger("exha.lb.access")
health = logging.getLogger("exha.lb.health")
admin = logging.getLogger("exha.lb.admin")
runner = logging.getLogger("exha.lb.runner")


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def event(logger: logging.Logger, level: int, name: str, **fields: object) -> None:
    """Log one event as `event=<name> k=v ...` on a single line (values quoted when needed)."""
    if not logger.isEnabledFor(level):
        return
    parts = [f"event={name}"] + [f"{k}={_quote(v)}" for k, v in fields.items()]
    logger.log(level, "%s", " ".join(parts))


class _LineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        msg = record.getMessage().replace("\n", "\\n")
        return f"{ts}.{int(record.msecs):03d}Z {record.levelname.lower()} {record.name} {msg}"


def setup(level: str = "info", stream: object = None) -> None:
    """Send the balancer's loggers to stderr (or `stream`), one line per record."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(_LineFormatter())
    for h in list(root.handlers):
        if not isinstance(h, logging.NullHandler):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    root.propagate = False
