"""Named loggers per concern, and an adapter that puts the target host first in every message."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

logging.getLogger("exha").addHandler(logging.NullHandler())


def get_logger(concern: str) -> logging.Logger:
    """Logger for one concern, e.g. get_logger("roles.asa") -> exha.roles.asa."""
    return logging.getLogger(f"exha.{concern}")


class HostLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefix every record with the host it concerns: "asa1: sent 3 config lines"."""

    def process(self, msg: object, kwargs: MutableMapping[str, Any]) -> tuple[object, MutableMapping[str, Any]]:
        return f"{self.extra['host'] if self.extra else '?'}: {msg}", kwargs


def host_logger(concern: str, host: str) -> HostLogger:
    return HostLogger(get_logger(concern), {"host": host})
