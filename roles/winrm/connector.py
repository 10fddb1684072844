"""The `@exha-winrm/<name>` pyinfra connector: runs PowerShell on a Windows host over WinRM (pywinrm)
and maps transport, TLS and credential failures to the toolkit's one-line errors."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any, TypedDict

import requests
from pyinfra.api.exceptions import InventoryError
from pyinfra.connectors.base import DataMeta
from winrm import Session
from winrm.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)

from roles.api import ApiConnector
from roles.errors import DeviceAuthError, DeviceCommandError, DeviceConnectError
from roles.log import HostLogger, host_logger
from roles.winrm.powershell import clean_error

SCHEMES = ("https", "http")
TRANSPORTS = ("basic", "ntlm")
DEFAULT_PORTS = {"https": 5986, "http": 5985}


class WinRMData(TypedDict, total=False):
    winrm_host: str
    winrm_port: int | None
    winrm_scheme: str
    winrm_username: str | None
    winrm_password: str | None
    winrm_transport: str
    winrm_ca_file: str | None
    winrm_timeout: int


winrm_data_meta: dict[str, DataMeta] = {
    "winrm_host": DataMeta("Address or name of the WinRM endpoint (defaults to the inventory name)"),
    "winrm_port": DataMeta("WinRM port (default 5986 for https, 5985 for http)"),
    "winrm_scheme": DataMeta("https (default) or http", "https"),
    "winrm_username": DataMeta("WinRM user"),
    "winrm_password": DataMeta("WinRM password (secret; never printed)"),
    "winrm_transport": DataMeta("Authentication: basic (default) or ntlm", "basic"),
    "winrm_ca_file": DataMeta("PEM CA bundle that signed the server certificate (https)"),
    "winrm_timeout": DataMeta("Seconds to wait for one WinRM request", 30),
}


def _short(script: str) -> str:
    """A script's first working line (after any preference settings), trimmed, to name it in errors."""
    lines = [ln.strip() for ln in script.strip().splitlines() if ln.strip()]
    working = [ln for ln in lines if not ln.startswith("$ErrorActionPreference")]
    first = (working or lines or [""])[0]
    return first if len(first) <= 100 else first[:97] + "..."


class WinRMConnector(ApiConnector):
    """Run PowerShell scripts on `@exha-winrm/<name>` through one pywinrm session per host.

    Facts and operations send PowerShell text; `run_text_command` answers stdout lines, and a
    non-zero exit status becomes a `DeviceCommandError` carrying PowerShell's own error text.
    """

    kind = "WinRM"
    data_cls = WinRMData
    data_meta = winrm_data_meta

    _session: Session | None = None

    @staticmethod
    def make_names_data(name: str | None = None) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
        if not name:
            raise InventoryError("@exha-winrm needs a host name: @exha-winrm/<name>")
        yield f"@exha-winrm/{name}", {"winrm_host": name}, []

    @property
    def log(self) -> HostLogger:
        return host_logger("roles.winrm", self.host.name)

    # -- settings ------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        scheme = self.data.get("winrm_scheme") or "https"
        port = self.data.get("winrm_port") or DEFAULT_PORTS.get(scheme, 5986)
        return f"{scheme}://{self.data.get('winrm_host')}:{port}/wsman"

    @property
    def username(self) -> str:
        return self.data.get("winrm_username") or ""

    def _check_settings(self) -> None:
        def bad(field: str, cause: str) -> DeviceConnectError:
            return DeviceConnectError(f"{field} {cause}", host=self.host.name)

        if not self.data.get("winrm_host"):
            raise bad("winrm_host", "is not set; give the WinRM address in the host data")
        if self.data.get("winrm_scheme", "https") not in SCHEMES:
            raise bad("winrm_scheme", f"is {self.data.get('winrm_scheme')!r}; use https or http")
        if self.data.get("winrm_transport", "basic") not in TRANSPORTS:
            raise bad("winrm_transport", f"is {self.data.get('winrm_transport')!r}; use basic or ntlm")
        if not self.username:
            raise bad("winrm_username", "is not set; give the WinRM user in the host data")
        if self.data.get("winrm_password") is None:
            raise bad("winrm_password", "is not set; give the WinRM password in the host data")
        port = self.data.get("winrm_port")
        if port is not None and not 0 < port < 65536:
            raise bad("winrm_port", f"is {port}; use 1-65535")
        if (self.data.get("winrm_timeout") or 0) < 2:
            raise bad("winrm_timeout", "must be at least 2 seconds")

    # -- session -------------------------------------------------------------------------------
    def open(self) -> None:
        self._check_settings()
        timeout = int(self.data.get("winrm_timeout") or 30)
        ca_file = self.data.get("winrm_ca_file")
        self._session = Session(
            self.endpoint,
            auth=(self.username, self.data.get("winrm_password") or ""),
            transport=self.data.get("winrm_transport") or "basic",
            server_cert_validation="validate",
            ca_trust_path=ca_file if ca_file else None,
            read_timeout_sec=timeout,
            operation_timeout_sec=max(1, timeout * 2 // 3),
            proxy=None,  # never route lab or site traffic through an environment proxy
        )
        # open and close one shell: proves reachability, TLS trust and credentials before any fact
        self._call("connect", lambda: _probe(self._session))
        self.log.debug("connected to %s as %s", self.endpoint, self.username)

    def close(self) -> None:
        if self._session is not None:
            self._session.protocol.transport.close_session()
            self._session = None

    # -- commands ------------------------------------------------------------------------------
    def run_text_command(self, command: str) -> list[str]:
        """Run a PowerShell script; return its stdout lines or raise with PowerShell's error text."""
        if self._session is None:
            raise DeviceConnectError("not connected", host=self.host.name)
        session = self._session
        self.log.debug("running %s", _short(command))

        def run() -> Any:
            with warnings.catch_warnings():  # pywinrm warns when it cannot decode CLIXML; we do it
                warnings.simplefilter("ignore")
                return session.run_ps(command)

        response = self._call(_short(command), run)
        stdout = response.std_out.decode("utf-8", errors="replace")
        if response.status_code != 0:
            stderr = clean_error(response.std_err.decode("utf-8", errors="replace"))
            raise DeviceCommandError(stderr or f"exit status {response.status_code}",
                                     host=self.host.name, command=_short(command))
        return [line.rstrip("\r") for line in stdout.splitlines() if line.strip()]

    def _call(self, what: str, func: Any) -> Any:
        """Run one WinRM exchange, mapping pywinrm/requests failures to the error tree."""
        host, url = self.host.name, self.endpoint
        try:
            return func()
        except AuthenticationError as e:
            raise DeviceAuthError(f"{url} refused user {self.username!r} (HTTP 401); "
                                  "check winrm_username / winrm_password", host=host) from e
        except requests.exceptions.SSLError as e:
            raise DeviceConnectError(f"TLS verification of {url} failed ({_reason(e)}); set winrm_ca_file "
                                     "to the CA that signed the WinRM certificate", host=host) from e
        except requests.exceptions.Timeout as e:
            raise DeviceConnectError(f"{url} did not answer in {self.data.get('winrm_timeout')} s",
                                     host=host) from e
        except requests.exceptions.ConnectionError as e:
            raise DeviceConnectError(f"no WinRM service at {url} ({_reason(e)})", host=host) from e
        except WinRMOperationTimeoutError as e:
            raise DeviceConnectError(f"{url} timed out running {what!r}", host=host) from e
        except WSManFaultError as e:
            raise DeviceCommandError(f"WS-Management fault: {e.reason}", host=host, command=what) from e
        except WinRMTransportError as e:
            raise DeviceConnectError(f"{url} answered HTTP {e.code}", host=host) from e
        except WinRMError as e:
            raise DeviceConnectError(f"{url}: {e}", host=host) from e


def _probe(session: Session | None) -> None:
    if session is not None:
        session.protocol.close_shell(session.protocol.open_shell())


_MARKERS = ("certificate verify failed", "hostname mismatch", "connection refused", "timed out",
            "no route to host", "name or service not known", "wrong version number", "connection reset")


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (cause, context, urllib3 `reason`, exceptions in args)."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
    return seen


def _reason(exc: BaseException) -> str:
    """The cause of a requests error in a few words."""
    chain = _causes(exc)
    text = " | ".join(str(e) for e in chain).lower()
    for marker in _MARKERS:
        if marker in text:
            return marker.capitalize() if marker.startswith("connection") else marker
    last = str(chain[-1]).splitlines()[0] if str(chain[-1]) else type(chain[-1]).__name__
    return last[:120]
