"""The simulated ASA's SSH side: password login, a character-echoing terminal like the ASA's, the
state folder (startup-config, host key) and the JSON-lines log of every line received."""

from __future__ import annotations

import datetime as dt
import hmac
import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from lab.asa_sim.cli import CliSession, Device, Reply
from lab.asa_sim.config import AsaConfig, seed_config

STARTUP_FILE = "startup-config"
LOG_FILE = "commands.jsonl"
HOST_KEY_FILE = "ssh_host_ed25519_key"
SEED_OBJECTS = {"EXCH-SMTP": "10.0.0.23", "EXCH-HTTPS": "10.0.0.23"}
SEED_OUTSIDE = "198.51.100.25"
HIDDEN = "********"


@dataclass(frozen=True)
class AsaSettings:
    """Everything the simulator is started with."""

    listen: str
    port: int
    state: Path
    hostname: str
    username: str
    password: str
    enable_secret: str
    initial_config: Path | None = None


class CommandLog:
    """Appends one JSON object per event to state/commands.jsonl (secrets never written)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, **entry: Any) -> None:
        entry = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **entry}
        with self.path.open("a") as f:
            f.write(json.dumps(entry) + "\n")


def load_device(settings: AsaSettings) -> Device:
    """Read startup-config from the state folder (creating it from the initial config the first
    time) into a fresh running-config, as a reload does."""
    settings.state.mkdir(parents=True, exist_ok=True)
    startup = settings.state / STARTUP_FILE
    if not startup.exists():
        if settings.initial_config is not None:
            text = settings.initial_config.read_text()
        else:
            text = seed_config(settings.hostname, SEED_OBJECTS, SEED_OUTSIDE)
        startup.write_text(AsaConfig.parse(text, settings.hostname).render())

    def save(text: str) -> None:
        tmp = startup.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, startup)

    config = AsaConfig.parse(startup.read_text(), settings.hostname)
    return Device(
        config=config, enable_secret=settings.enable_secret, save=save, load_startup=startup.read_text
    )


def _host_key(state: Path) -> asyncssh.SSHKey:
    path = state / HOST_KEY_FILE
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    path.chmod(0o600)
    return key


class _Auth(asyncssh.SSHServer):
    """Password authentication against the one configured user; wrong password is refused at SSH."""

    def __init__(self, settings: AsaSettings, log: CommandLog) -> None:
        self.settings, self.log = settings, log
        self.peer = "?"

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        peer = conn.get_extra_info("peername")
        self.peer = peer[0] if peer else "?"

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        ok = hmac.compare_digest(username.encode(), self.settings.username.encode()) and hmac.compare_digest(
            password.encode(), self.settings.password.encode()
        )
        self.log.write(event="login", peer=self.peer, user=username, ok=ok)
        return ok


class AsaServer:
    """Serves SSH sessions onto one shared `Device`."""

    def __init__(self, settings: AsaSettings) -> None:
        self.settings = settings
        self.log = CommandLog(settings.state / LOG_FILE)
        self.device = load_device(settings)
        self._ids = itertools.count(1)

    async def start(self) -> asyncssh.SSHAcceptor:
        return await asyncssh.create_server(
            lambda: _Auth(self.settings, self.log),
            self.settings.listen,
            self.settings.port,
            server_host_keys=[_host_key(self.settings.state)],
            process_factory=self._session,
            line_editor=False,
            encoding="utf-8",
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            keepalive_interval=0,
        )

    async def _session(self, process: asyncssh.SSHServerProcess[str]) -> None:
        sid = next(self._ids)
        user = process.get_extra_info("username") or ""
        peer = (process.get_extra_info("peername") or ("?",))[0]
        cli = CliSession(self.device, user)
        pager = Pager(process.stdout.write)
        pager.show(cli.greeting(), 0)
        hide, buf, skip_lf = False, "", False
        try:
            while True:
                try:
                    data = await process.stdin.read(4096)
                except (asyncssh.BreakReceived, asyncssh.SignalReceived, asyncssh.TerminalSizeChanged):
                    continue
                if not data:
                    break
                for ch in data:
                    if skip_lf and ch == "\n":
                        skip_lf = False
                        continue
                    skip_lf = ch == "\r"
                    if pager.waiting:
                        pager.key(ch)
                        continue
                    if ch in "\r\n":
                        process.stdout.write("\r\n")
                        mode = cli.mode
                        self.log.write(
                            event="command",
                            session=sid,
                            peer=peer,
                            user=user,
                            mode=mode,
                            command=HIDDEN if hide else buf,
                        )
                        try:
                            reply = cli.feed(buf)
                        except Exception as e:  # a simulator bug must not end the session silently
                            error = f"{type(e).__name__}: {e}"
                            self.log.write(event="internal-error", session=sid, error=error)
                            reply = Reply(f"ERROR: simulator internal error ({type(e).__name__})", cli.prompt)
                        buf = ""
                        hide = reply.hide_input
                        pager.show(reply, cli.pager_lines)
                        if reply.close:
                            process.exit(0)
                            return
                    elif ch in "\x7f\b":
                        if buf:
                            buf = buf[:-1]
                            if not hide:
                                process.stdout.write("\b \b")
                    elif ch == "\x03":  # Ctrl-C: drop the line
                        buf = ""
                        process.stdout.write("\r\n" + cli.prompt)
                    elif ch >= " " or ch == "\t":
                        buf += ch
                        if not hide:
                            process.stdout.write(ch)
        except (asyncssh.DisconnectError, ConnectionError, BrokenPipeError):
            return
        process.exit(0)



MORE = "<--- More --->"


class Pager:
    """Output through the ASA's pager: after `lines` lines it shows `<--- More --->` and waits for a
    key (space: next page, Enter: next line, anything else: stop); 0 lines means no paging."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.rest: list[str] = []
        self.prompt = ""
        self.page = 0

    @property
    def waiting(self) -> bool:
        return bool(self.rest)

    def _emit(self, lines: list[str]) -> None:
        self.write("".join(line + "\r\n" for line in lines))

    def show(self, reply: Reply, page_lines: int) -> None:
        text = reply.output
        lines = text.split("\n") if text else []
        if text.endswith("\n"):
            lines.pop()
        prompt = reply.prompt.replace("\n", "\r\n")
        if page_lines and len(lines) > page_lines and not reply.close:
            self._emit(lines[:page_lines])
            self.rest, self.prompt, self.page = lines[page_lines:], prompt, page_lines
            self.write(MORE)
            return
        self._emit(lines)
        self.write(prompt)

    def key(self, ch: str) -> None:
        self.write("\r" + " " * len(MORE) + "\r")
        if ch not in " \r\n":
            self.rest = []
            self.write(self.prompt)
            return
        n = self.page if ch == " " else 1
        chunk, self.rest = self.rest[:n], self.rest[n:]
        self._emit(chunk)
        self.write(MORE if self.rest else self.prompt)


class StartError(Exception):
    """The simulator cannot start: the message names the file or address and the cause."""


async def serve(settings: AsaSettings) -> None:
    """Run the simulator until cancelled."""
    try:
        server = AsaServer(settings)
    except OSError as e:
        raise StartError(f"state folder {settings.state}: {e.strerror or e}") from e
    try:
        acceptor = await server.start()
    except OSError as e:
        raise StartError(f"cannot listen on {settings.listen}:{settings.port}: {e.strerror or e}") from e
    server.log.write(
        event="start", listen=settings.listen, port=settings.port, hostname=server.device.config.hostname
    )
    print(
        f"asa_sim: {server.device.config.hostname} listening on {settings.listen}:{settings.port}", flush=True
    )
    try:
        await acceptor.wait_closed()
    finally:
        acceptor.close()
