"""The toolkit's error tree. Every error renders as one line naming the host, the field or command, and
the cause, so a change-window operator can act on it without a traceback.

    ExhaError
    ├── DeviceConnectError        (+ pyinfra ConnectError at the connector boundary)
    │   └── DeviceAuthError       bad credentials, TSIG key refused, WinRM 401
    ├── FactParseError            device output that does not parse
    ├── DeviceCommandError        the device rejected a command (ASA ERROR:, PowerShell error, DNS rcode)
    ├── OperationInputError       bad operation arguments (+ pyinfra OperationValueError, ValueError)
    └── SiteConfigError           invalid inventory / site description (+ PyinfraError, ValueError)

The pyinfra bases make pyinfra's CLI print these as one "Operation error" / "pyinfra error" line.
"""

from __future__ import annotations

from pyinfra.api.exceptions import OperationValueError, PyinfraError


class ExhaError(Exception):
    """Root of the toolkit's errors. Subclasses set `fmt`; fields are kept as attributes."""

    fmt = "{cause}"

    def __init__(self, cause: str = "", **fields: object) -> None:
        self.cause = cause
        self.fields = fields
        for k, v in fields.items():
            setattr(self, k, v)
        super().__init__(self.fmt.format(cause=cause, **fields))


class DeviceConnectError(ExhaError):
    """The device could not be reached (unreachable, TLS or host-key mismatch, timeout)."""

    fmt = "{host}: cannot connect: {cause}"


class DeviceAuthError(DeviceConnectError):
    """The device refused the credentials."""

    fmt = "{host}: authentication failed: {cause}"


class FactParseError(ExhaError):
    """Device output did not parse into the expected shape."""

    fmt = "{host}: cannot parse output of {command!r}: {cause}"


class DeviceCommandError(ExhaError):
    """The device rejected a command; `cause` carries the device's own message."""

    fmt = "{host}: command {command!r} rejected by device: {cause}"


class OperationInputError(ExhaError, OperationValueError):
    """An operation got an argument it cannot use."""

    fmt = "{field}: {cause}"


class SiteConfigError(ExhaError, PyinfraError, ValueError):
    """The site description (inventory data) is invalid."""

    fmt = "{source}: {field}: {cause}"
