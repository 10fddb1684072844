"""The `@exha-asa/<name>` connector: one netmiko `cisco_asa` SSH session per ASA, privileged mode.

It answers two calls. `asa.show` runs `show` commands and returns their text; `asa.network_object` backs up
an object's config to a local file, sends the change with `send_config_set`, re-reads and verifies it,
then `write memory`. Every netmiko/paramiko failure becomes one line naming the ASA.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

from paramiko.ssh_exception import SSHException
from pyinfra.api.exceptions import InventoryError
from pyinfra.connectors.base import DataMeta

from roles.api import ApiConnector
from roles.asa.config import SAVED_MARK, ObjectState, find_errors, object_lines, parse_objects, same_object
from roles.asa.facts import SHOW_NAT, SHOW_OBJECTS
from roles.errors import DeviceAuthError, DeviceCommandError, DeviceConnectError, OperationInputError
from roles.log import host_logger


class AsaData(TypedDict, total=False):
    asa_host: str
    asa_port: int
    asa_username: str
    asa_password: str
    asa_enable_secret: str
    asa_known_hosts: str
    asa_connect_timeout: float
    asa_command_timeout: float


DATA_META: dict[str, DataMeta] = {
    "asa_host": DataMeta("address of the ASA's SSH management interface"),
    "asa_port": DataMeta("SSH port", 22),
    "asa_username": DataMeta("login user"),
    "asa_password": DataMeta("login password (secret)"),
    "asa_enable_secret": DataMeta("enable secret (secret)"),
    "asa_known_hosts": DataMeta("known_hosts file holding the ASA's host key; when set, any other key "
                                "(or none) is refused"),
    "asa_connect_timeout": DataMeta("seconds to connect and log in", 10.0),
    "asa_command_timeout": DataMeta("seconds to wait for one command's output", 30.0),
}

# netmiko is imported where a session is opened or used: pyinfra imports every registered connector for
# any `@...` host, and netmiko alone costs ~0.4 s of CPU that DNS, vSphere or WinRM runs need not pay.

# paramiko logs a failed handshake as an ERROR with a traceback from its transport thread; this connector
# reports every such failure itself as one line, so only paramiko's critical records get through
logging.getLogger("paramiko.transport").setLevel(logging.CRITICAL)

#: commands `asa.show` will run: read-only ones only
_READ_ONLY = re.compile(r"^show\s")


class AsaConnector(ApiConnector):
    """Cisco ASA over SSH (netmiko `cisco_asa`, paramiko transport)."""

    kind = "ASA"
    handles_execution = True
    data_cls = AsaData
    data_meta = DATA_META

    def __init__(self, state: Any, host: Any) -> None:
        super().__init__(state, host)
        self.session: Any = None
        # fact reads within one pyinfra stage, dropped on any change: several objects share
        # `show running-config nat` and `show startup-config`
        self._cache: dict[str, list[str]] = {}
        self._cache_stage: Any = None
        self.log = host_logger("roles.asa", host.name)

    @staticmethod
    def make_names_data(name: str | None = None) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
        if not name:
            raise InventoryError("@exha-asa needs the ASA's name: @exha-asa/<name>")
        yield f"@exha-asa/{name}", {}, []

    # -- session -------------------------------------------------------------------------------
    def _require(self, key: str) -> Any:
        value = self.data.get(key)  # type: ignore[misc]
        if value in (None, ""):
            raise DeviceConnectError(f"host data {key} is not set (see inventory/lab.py)",
                                     host=self.host.name)
        return value

    def open(self) -> None:
        from netmiko import ConnectHandler
        from netmiko.exceptions import (NetmikoAuthenticationException, NetmikoBaseException,
                                        NetmikoTimeoutException, ReadTimeout)

        address, port = self._require("asa_host"), int(self.data.get("asa_port") or 22)
        username = self._require("asa_username")
        known_hosts = self.data.get("asa_known_hosts") or ""
        if known_hosts and not os.path.isfile(known_hosts):
            raise DeviceConnectError(f"asa_known_hosts file {known_hosts} does not exist",
                                     host=self.host.name)
        if not known_hosts:
            self.log.warning("no asa_known_hosts: accepting the ASA's host key unchecked")
        connect_timeout = float(self.data.get("asa_connect_timeout") or 10.0)
        where = f"{address}:{port}"
        try:
            self.session = ConnectHandler(
                device_type="cisco_asa", host=address, port=port, username=username,
                password=self._require("asa_password"), secret=self._require("asa_enable_secret"),
                ssh_strict=bool(known_hosts), system_host_keys=False, alt_host_keys=bool(known_hosts),
                alt_key_file=known_hosts, allow_agent=False, use_keys=False,
                conn_timeout=connect_timeout, auth_timeout=connect_timeout, banner_timeout=connect_timeout,
                timeout=self.command_timeout,
                # every read while logging in waits at most this long (a wrong enable secret shows as a
                # missing `#` prompt); commands then pass their own read_timeout
                read_timeout_override=connect_timeout,
            )
            self.session.read_timeout_override = None
        except NetmikoAuthenticationException as e:
            raise DeviceAuthError(f"{where} refused user {username!r} (check asa_username / asa_password)",
                                  host=self.host.name) from e
        except NetmikoTimeoutException as e:
            text = str(e)
            if "known_hosts" in text or "does not match" in text:
                raise DeviceConnectError(f"host key of {where} is not the one in {known_hosts} "
                                         "(re-check the ASA's key, then update asa_known_hosts)",
                                         host=self.host.name) from e
            raise DeviceConnectError(f"{where} unreachable or not answering SSH within {connect_timeout:g}s",
                                     host=self.host.name) from e
        except (ReadTimeout, ValueError) as e:
            raise DeviceAuthError(f"{where} did not reach privileged mode (check asa_enable_secret): "
                                  f"{_first_line(e)}", host=self.host.name) from e
        except (SSHException, OSError, NetmikoBaseException) as e:
            raise DeviceConnectError(f"{where}: {_first_line(e)}", host=self.host.name) from e
        self.log.debug("connected to %s", where)

    @property
    def command_timeout(self) -> float:
        return float(self.data.get("asa_command_timeout") or 30.0)

    def close(self) -> None:
        from netmiko.exceptions import NetmikoBaseException

        if self.session is not None:
            try:
                self.session.disconnect()
            except (OSError, SSHException, NetmikoBaseException):
                pass
            self.session = None

    def _ensure_session(self) -> None:
        """Open the session, or open it again if the ASA dropped it (its SSH idle timeout may pass while
        an operator reads the plan at pyinfra's confirm prompt, between reading facts and changing)."""
        if self.session is not None:
            try:
                alive = bool(self.session.is_alive())
            except (OSError, SSHException, EOFError):
                alive = False
            if alive:
                return
            self.log.info("session was closed by the ASA; logging in again")
            self.close()
        self.open()

    def _send(self, command: str) -> str:
        """Run one exec command; device errors (ERROR: lines) raise DeviceCommandError."""
        from netmiko.exceptions import NetmikoBaseException, ReadTimeout

        self._ensure_session()
        self.log.debug("sending %r", command)
        try:
            output = str(self.session.send_command(command, strip_prompt=True, strip_command=True,
                                                      read_timeout=self.command_timeout))
        except ReadTimeout as e:
            raise DeviceCommandError(f"no prompt within the command timeout ({_first_line(e)})",
                                     host=self.host.name, command=command) from e
        except (OSError, SSHException, NetmikoBaseException) as e:
            raise DeviceCommandError(f"session failed: {_first_line(e)}", host=self.host.name,
                                     command=command) from e
        errors = find_errors(output)
        if errors:
            raise DeviceCommandError(errors[0], host=self.host.name, command=command)
        return output

    def _configure(self, lines: list[str]) -> str:
        from netmiko.exceptions import NetmikoBaseException, ReadTimeout

        self._ensure_session()
        self.log.debug("configuring %r", lines)
        try:
            output = str(self.session.send_config_set(lines, cmd_verify=True,
                                                      read_timeout=self.command_timeout))
        except ReadTimeout as e:
            raise DeviceCommandError(f"no prompt within the command timeout ({_first_line(e)})",
                                     host=self.host.name, command="; ".join(lines)) from e
        except (OSError, SSHException, NetmikoBaseException, ValueError) as e:
            raise DeviceCommandError(f"session failed: {_first_line(e)}", host=self.host.name,
                                     command="; ".join(lines)) from e
        errors = find_errors(output)
        if errors:
            raise DeviceCommandError(" ".join(errors), host=self.host.name, command="; ".join(lines))
        return output

    def run_text_command(self, command: str) -> list[str]:
        if not _READ_ONLY.match(command.strip()):
            return super().run_text_command(command)
        return self._send(command.strip()).splitlines()

    # -- calls ---------------------------------------------------------------------------------
    def api_asa_show(self, commands: list[str]) -> dict[str, list[str]]:
        """Run read-only `show` commands; {command: output lines}, cached until a change or the next
        pyinfra stage."""
        out: dict[str, list[str]] = {}
        stage = getattr(self.state, "current_stage", None)
        if self._cache_stage != stage:
            self._cache, self._cache_stage = {}, stage
        for command in commands:
            if not _READ_ONLY.match(command):
                raise OperationInputError(f"asa.show runs show commands only, not {command!r}",
                                          field="commands")
            if command not in self._cache:
                self._cache[command] = self._send(command).splitlines()
            out[command] = list(self._cache[command])
        return out

    def _read_object(self, object_name: str) -> ObjectState | None:
        definition = self._send(f"{SHOW_OBJECTS} {object_name}").splitlines()
        if object_name not in parse_objects(definition):
            return None
        return parse_objects(definition + self._send(SHOW_NAT).splitlines())[object_name]

    def api_asa_network_object(self, object_name: str, lines: list[str], expect: ObjectState | None,
                               save: bool, backup_dir: str) -> dict[str, Any]:
        """Back up, change, verify and save one network object; returns what was done."""
        self._cache = {}
        before = self._read_object(object_name)
        backup = self._backup(backup_dir, object_name, before)
        if lines:
            self._configure(lines)
            after = self._read_object(object_name)
            if not same_object(after, expect):
                raise DeviceCommandError(
                    "after the change the running-config shows "
                    f"{object_lines(object_name, after) or 'no object'}"
                    f", expected {object_lines(object_name, expect) or 'no object'} (backup: {backup})",
                    host=self.host.name, command="; ".join(lines))
            self.log.info("object network %s changed (backup %s)", object_name, backup)
        saved = False
        if save:
            output = self._send("write memory")
            if SAVED_MARK not in output:
                raise DeviceCommandError(f"no {SAVED_MARK} in its output: {output.strip()[-200:]!r}",
                                         host=self.host.name, command="write memory")
            saved = True
            self.log.info("running-config saved")
        return {"object_name": object_name, "backup": str(backup), "changed_lines": lines, "saved": saved}

    def _backup(self, backup_dir: str, object_name: str, current: ObjectState | None) -> Path:
        folder = Path(backup_dir) / _safe(self.host.name)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = folder / f"{_safe(object_name)}-{stamp}.cfg"
        body = object_lines(object_name, current) or [f"! object network {object_name} did not exist"]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            n = 1
            while path.exists():
                n += 1
                path = folder / f"{_safe(object_name)}-{stamp}-{n}.cfg"
            path.write_text("\n".join([f"! {self.host.name} running-config before the change, {stamp}",
                                       *body]) + "\n")
        except OSError as e:
            raise DeviceCommandError(f"cannot write the backup {path}: {e.strerror}; nothing was changed",
                                     host=self.host.name, command="backup") from e
        return path


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "asa"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
