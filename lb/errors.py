"""The balancer's exception tree; every error renders one line naming where and what.

    LbError
    ├── ConfigError(LbError, ValueError)    file, field path, what is allowed, what was found
    ├── TemplateError(ConfigError)          a template that is missing or malformed
    ├── NftError(LbError, RuntimeError)     nftables rules could not be installed or removed
    └── AdminError(LbError)                 admin API client call failed (exha-lb status)
"""

from __future__ import annotations


class LbError(Exception):
    """Root of the balancer's errors."""


class ConfigError(LbError, ValueError):
    """A configuration value is not allowed: names file, field path, what is allowed and what was given."""

    def __init__(self, file: str, field: str, allowed: str, got: object = None) -> None:
        self.file = file
        self.field = field
        self.allowed = allowed
        self.got = got
        where = f"{file}: {field}" if field else file
        suffix = "" if got is None else f", got {got!r}"
        super().__init__(f"{where}: {allowed}{suffix}")


class TemplateError(ConfigError):
    """A virtual-service template is missing or malformed."""


class NftError(LbError, RuntimeError):
    """nftables rules for a port-`*` service could not be installed or removed."""

    def __init__(self, action: str, cause: str) -> None:
        self.action = action
        self.cause = cause
        super().__init__(f"nftables {action} failed: {cause}")


class AdminError(LbError):
    """The admin API could not be reached or refused a request."""

    def __init__(self, url: str, cause: str) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"admin API {url}: {cause}")
