"""The simulated ASA's command line: modes and prompts, the commands each mode accepts, and the
ASA's own output and error texts. Pure: one `CliSession.feed(line)` call per line typed, no sockets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.asa_sim.config import OBJECTS_MARK, AsaConfig, Block, NetworkObject, valid_ipv4, valid_mask

# Mode -> prompt suffix after the hostname (ASA 9.x "Command Modes and Prompts").
PROMPTS: dict[str, str] = {
    "user": ">",
    "enable": "#",
    "config": "(config)#",
    "config-network-object": "(config-network-object)#",
}
# `show curpriv` fields per mode.
PRIVILEGE = {
    "user": (1, "P_UNPR"),
    "enable": (15, "P_PRIV"),
    "config": (15, "P_CONF"),
    "config-network-object": (15, "P_CONF"),
}

INVALID_INPUT = "ERROR: % Invalid input detected at '^' marker."
INCOMPLETE = "ERROR: % Incomplete command"
LOGIN_BANNER = "Type help or '?' for a list of available commands."
ENABLE_PROMPT = "Password: "
ENABLE_ATTEMPTS = 3


@dataclass
class Reply:
    """What the ASA prints after one line, and how the next line is read."""

    output: str  # text before the next prompt, lines joined by "\n" (may be "")
    prompt: str  # the next prompt, trailing space included
    hide_input: bool = False  # next line is a password: do not echo it
    close: bool = False  # the session ends (exit/logout)
    saved: bool = False  # startup-config must be written now (write memory)


@dataclass
class Device:
    """State shared by all sessions: running-config, how to save it, facts for `show version`."""

    config: AsaConfig
    enable_secret: str
    save: Callable[[str], None]  # write startup-config text
    load_startup: Callable[[], str]  # read startup-config text
    booted_at: float = field(default_factory=time.time)
    last_change: str = ""


def _caret(prompt: str, line: str, word_index: int) -> str:
    """The caret line under word `word_index` of `line` typed after `prompt`, then the ASA error."""
    words = line.split()
    pos = 0
    for i, w in enumerate(words):
        pos = line.index(w, pos)
        if i == word_index:
            break
        pos += len(w)
    else:
        pos = len(line.rstrip()) + 1
    return " " * (len(prompt) + pos) + "^\n" + INVALID_INPUT


def _uptime(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    mins = rest // 60
    parts = ([f"{days} days"] if days else []) + ([f"{hours} hours"] if hours or days else [])
    return " ".join(parts + [f"{mins} mins"])


def _matches(word: str, keyword: str, minimum: int = 1) -> bool:
    """ASA accepts any unambiguous abbreviation; the simulator accepts prefixes of `minimum` letters."""
    return len(word) >= minimum and keyword.startswith(word.lower())


class CliSession:
    """One SSH session's command-line state machine."""

    def __init__(self, device: Device, username: str) -> None:
        self.device = device
        self.username = username
        self.mode = "user"
        self.object: NetworkObject | None = None
        self.pager_lines = device.config.pager_lines()
        self.width = 80
        self._enable_tries = 0
        self._awaiting: str | None = None  # "enable-password" or "copy-source"

    # -- prompts ---------------------------------------------------------------------------
    @property
    def prompt(self) -> str:
        return f"{self.device.config.hostname}{PROMPTS[self.mode]} "

    def greeting(self) -> Reply:
        return Reply(LOGIN_BANNER + "\n", self.prompt)

    # -- input -----------------------------------------------------------------------------
    def feed(self, line: str) -> Reply:
        """Handle one typed line (without its line ending)."""
        if self._awaiting == "enable-password":
            return self._enable_password(line)
        if self._awaiting == "copy-source":
            self._awaiting = None
            if line.strip() not in ("", "running-config"):
                return Reply(f"%Error opening {line.strip()} (No such file or directory)", self.prompt)
            return self._write_memory()
        words = line.split()
        if not words:
            return Reply("", self.prompt)
        if self.mode == "config-network-object":
            reply = self._object_mode(line, words)
            if reply is not None:
                return reply
            saved = self.mode, self.object
            self.mode, self.object = "config", None
            reply = self._config_mode(line, words)
            if reply is not None:  # a global configuration command leaves the sub-mode, as on the ASA
                return reply
            self.mode, self.object = saved  # exec commands (show, write ...) and errors stay in it
        elif self.mode == "config":
            reply = self._config_mode(line, words)
            if reply is not None:
                return reply
        if self.mode != "user":
            reply = self._enable_mode(line, words)
            if reply is not None:
                return reply
        reply = self._user_mode(line, words)
        if reply is not None:
            return reply
        return Reply(_caret(self.prompt, line, 0), self.prompt)

    # -- modes -----------------------------------------------------------------------------
    def _user_mode(self, line: str, words: list[str]) -> Reply | None:
        w0 = words[0].lower()
        if _matches(w0, "enable", 2) and len(words) == 1:
            if self.mode != "user":
                return Reply("", self.prompt)
            self._awaiting, self._enable_tries = "enable-password", 0
            return Reply("", ENABLE_PROMPT, hide_input=True)
        if w0 in ("exit", "quit", "logout") or _matches(w0, "logout", 4):
            return Reply("\nLogoff\n", "", close=True)
        if _matches(w0, "show", 2):
            return self._show(line, words)
        if _matches(w0, "terminal", 4):
            return self._terminal(line, words)
        if (
            w0 == "no"
            and len(words) >= 3
            and _matches(words[1].lower(), "terminal", 4)
            and _matches(words[2].lower(), "pager", 3)
        ):
            self.pager_lines = 0
            return Reply("", self.prompt)
        return None

    def _enable_mode(self, line: str, words: list[str]) -> Reply | None:
        w0 = words[0].lower()
        if _matches(w0, "configure", 4):
            if len(words) == 2 and _matches(words[1].lower(), "terminal", 1):
                self.mode = "config"
                return Reply("", self.prompt)
            return Reply(_caret(self.prompt, line, 1) if len(words) > 1 else INCOMPLETE, self.prompt)
        if w0 == "disable" and self.mode == "enable":
            self.mode = "user"
            return Reply("", self.prompt)
        if _matches(w0, "write", 2):
            if len(words) == 1 or _matches(words[1].lower(), "memory", 3):
                return self._write_memory()
            return Reply(_caret(self.prompt, line, 1), self.prompt)
        if w0 == "copy":
            args = [w.lower() for w in words[1:]]
            noconfirm = bool(args) and args[0] == "/noconfirm"
            args = args[1:] if noconfirm else args
            if (
                len(args) == 2
                and _matches(args[0], "running-config", 3)
                and _matches(args[1], "startup-config", 3)
            ):
                if noconfirm:
                    return self._write_memory()
                self._awaiting = "copy-source"
                return Reply("", "\nSource filename [running-config]? ")
            bad = 0 if args and not _matches(args[0], "running-config", 3) else 1
            return Reply(
                _caret(self.prompt, line, 1 + int(noconfirm) + bad) if args else INCOMPLETE, self.prompt
            )
        if w0 in ("exit", "logout", "quit") and self.mode == "enable":
            return Reply("\nLogoff\n", "", close=True)
        return None

    def _config_mode(self, line: str, words: list[str]) -> Reply | None:
        w0 = words[0].lower()
        cfg = self.device.config
        if w0 == "end":
            self.mode, self.object = "enable", None
            return Reply("", self.prompt)
        if w0 == "exit":
            self.mode, self.object = "enable", None
            return Reply("", self.prompt)
        if _matches(w0, "object", 3):
            if len(words) < 2 or not _matches(words[1].lower(), "network", 3):
                return Reply(_caret(self.prompt, line, 1) if len(words) > 1 else INCOMPLETE, self.prompt)
            if len(words) != 3:
                return Reply(INCOMPLETE if len(words) == 2 else _caret(self.prompt, line, 3), self.prompt)
            name = words[2]
            if len(name) > 64:
                return Reply("ERROR: Object name cannot exceed 64 characters", self.prompt)
            self.object = cfg.object(name)
            self.device.last_change = self.username
            self.mode = "config-network-object"
            return Reply("", self.prompt)
        if w0 == "no" and len(words) >= 2 and _matches(words[1].lower(), "object", 3):
            if len(words) != 4 or not _matches(words[2].lower(), "network", 3):
                return Reply(INCOMPLETE if len(words) < 4 else _caret(self.prompt, line, 4), self.prompt)
            name = words[3]
            if name not in cfg.objects:
                return Reply(f"ERROR: Object ({name}) does not exist.", self.prompt)
            if cfg.references(name):
                return Reply(f"ERROR: unable to delete object ({name}). Object is being used.", self.prompt)
            del cfg.objects[name]
            self.device.last_change = self.username
            return Reply("", self.prompt)
        if w0 == "hostname" and len(words) == 2:
            cfg._set_hostname_line(words[1])
            return Reply("", self.prompt)
        if w0 == "access-list" and len(words) >= 4:
            cfg.blocks.insert(cfg.blocks.index(OBJECTS_MARK) + 1, Block(" ".join(words)))
            return Reply("", self.prompt)
        if w0 == "no" and len(words) >= 4 and words[1] == "access-list":
            text = " ".join(words[1:])
            for b in list(cfg.blocks):
                if not isinstance(b, str) and b.header == text:
                    cfg.blocks.remove(b)
                    return Reply("", self.prompt)
            return Reply(f"ERROR: {words[2]}: no such access-list line", self.prompt)
        return None

    def _object_mode(self, line: str, words: list[str]) -> Reply | None:
        obj = self.object
        assert obj is not None
        w0 = words[0].lower()
        if w0 == "host":
            if len(words) != 2:
                return Reply(INCOMPLETE if len(words) == 1 else _caret(self.prompt, line, 2), self.prompt)
            if not valid_ipv4(words[1]):
                return Reply(_caret(self.prompt, line, 1), self.prompt)
            obj.kind, obj.value = "host", words[1]
        elif w0 == "subnet":
            if len(words) != 3:
                return Reply(INCOMPLETE if len(words) < 3 else _caret(self.prompt, line, 3), self.prompt)
            for i in (1, 2):
                ok = valid_ipv4(words[i]) if i == 1 else valid_mask(words[i])
                if not ok:
                    return Reply(_caret(self.prompt, line, i), self.prompt)
            obj.kind, obj.value = "subnet", f"{words[1]} {words[2]}"
        elif w0 == "range":
            if len(words) != 3:
                return Reply(INCOMPLETE if len(words) < 3 else _caret(self.prompt, line, 3), self.prompt)
            for i in (1, 2):
                if not valid_ipv4(words[i]):
                    return Reply(_caret(self.prompt, line, i), self.prompt)
            obj.kind, obj.value = "range", f"{words[1]} {words[2]}"
        elif w0 == "fqdn":
            args = words[1:]
            if args and args[0] in ("v4", "v6"):
                args = args[1:]
            if len(args) != 1:
                return Reply(
                    INCOMPLETE if not args else _caret(self.prompt, line, len(words) - 1), self.prompt
                )
            obj.kind, obj.value = "fqdn", " ".join(words[1:])
        elif w0 == "description":
            if len(words) < 2:
                return Reply(INCOMPLETE, self.prompt)
            obj.description = line.strip().split(None, 1)[1]
        elif w0 == "nat":
            err = _check_nat(self.prompt, line, words)
            if err:
                return Reply(err, self.prompt)
            obj.nat = " ".join(words[1:])
        elif (
            w0 == "no"
            and len(words) >= 2
            and words[1].lower() in ("nat", "description", "host", "subnet", "range", "fqdn")
        ):
            kw = words[1].lower()
            if kw == "nat":
                obj.nat = None
            elif kw == "description":
                obj.description = None
            elif obj.kind == kw:
                obj.kind, obj.value = None, ""
        elif w0 in ("exit",):
            self.mode, self.object = "config", None
        elif w0 == "end":
            self.mode, self.object = "enable", None
        else:
            return None
        self.device.last_change = self.username
        return Reply("", self.prompt)

    # -- commands shared by several modes ---------------------------------------------------
    def _terminal(self, line: str, words: list[str]) -> Reply:
        if len(words) < 2:
            return Reply(INCOMPLETE, self.prompt)
        sub = words[1].lower()
        if _matches(sub, "pager", 3):
            args = words[2:]
            if args and args[0].lower() == "lines":
                args = args[1:]
            if len(args) != 1 or not args[0].isdigit() or int(args[0]) > 2147483647:
                return Reply(
                    INCOMPLETE if not args else _caret(self.prompt, line, len(words) - len(args)), self.prompt
                )
            self.pager_lines = int(args[0])
            return Reply("", self.prompt)
        if _matches(sub, "width", 1):
            if len(words) != 3 or not words[2].isdigit() or not 40 <= int(words[2]) <= 511:
                return Reply(INCOMPLETE if len(words) == 2 else _caret(self.prompt, line, 2), self.prompt)
            self.width = int(words[2])
            return Reply("", self.prompt)
        return Reply(_caret(self.prompt, line, 1), self.prompt)

    def _show(self, line: str, words: list[str]) -> Reply:
        if len(words) < 2:
            return Reply(INCOMPLETE, self.prompt)
        sub = words[1].lower()
        if _matches(sub, "curpriv", 3) and len(words) == 2:
            level, mode = PRIVILEGE[self.mode]
            user = self.username if self.mode == "user" else "enable_15"
            return Reply(
                f"Username : {user}\nCurrent privilege level : {level}\nCurrent Mode/s : {mode}", self.prompt
            )
        if _matches(sub, "version", 3) and len(words) == 2:
            return Reply(self._version(), self.prompt)
        if self.mode == "user":
            return Reply(_caret(self.prompt, line, 1), self.prompt)
        if _matches(sub, "running-config", 3):
            return self._show_run(line, words[2:])
        if _matches(sub, "startup-config", 3) and len(words) == 2:
            return Reply(self.device.load_startup().rstrip("\n"), self.prompt)
        return Reply(_caret(self.prompt, line, 1), self.prompt)

    def _show_run(self, line: str, args: list[str]) -> Reply:
        cfg = self.device.config
        if not args:
            return Reply(cfg.render().rstrip("\n"), self.prompt)
        a0 = args[0].lower()
        if _matches(a0, "object", 3):
            if len(args) == 1:
                return Reply("\n".join(cfg.object_definitions()), self.prompt)
            if not _matches(args[1].lower(), "network", 3) and args[1].lower() != "id":
                return Reply(_caret(self.prompt, line, 3), self.prompt)
            if len(args) == 2:
                return Reply("\n".join(cfg.object_definitions()), self.prompt)
            if len(args) == 3:
                return Reply("\n".join(cfg.object_definitions(args[2])), self.prompt)
            return Reply(_caret(self.prompt, line, 5), self.prompt)
        if _matches(a0, "nat", 3) and len(args) == 1:
            return Reply("\n".join(cfg.nat_section()), self.prompt)
        if _matches(a0, "hostname", 4) and len(args) == 1:
            return Reply(f"hostname {cfg.hostname}", self.prompt)
        if _matches(a0, "access-list", 3):
            lines = [
                b.header
                for b in cfg.blocks
                if not isinstance(b, str)
                and b.header.startswith("access-list")
                and (len(args) == 1 or b.header.split()[1] == args[1])
            ]
            return Reply("\n".join(lines), self.prompt)
        return Reply(_caret(self.prompt, line, 2), self.prompt)

    def _version(self) -> str:
        d = self.device
        up = _uptime(time.time() - d.booted_at)
        modified = (
            (
                f"Configuration last modified by {d.last_change} at "
                f"{time.strftime('%H:%M:%S.000 UTC %a %b %d %Y', time.gmtime())}"
            )
            if d.last_change
            else "Configuration has not been modified since last system restart."
        )
        return "\n".join(
            [
                "",
                "Cisco Adaptive Security Appliance Software Version 9.8(4)",
                "Firepower Extensible Operating System Version 2.2(2.97)",
                "Device Manager Version 7.8(2)",
                "",
                "Compiled on Wed 14-Nov-18 13:28 PST by builders",
                'System image file is "boot:/asa984-smp-k8.bin"',
                'Config file at boot was "startup-config"',
                "",
                f"{d.config.hostname} up {up}",
                "",
                "Hardware:   ASAv, 2048 MB RAM, CPU Xeon E5 series 2300 MHz, 1 CPU (1 core)",
                "Model Id:   ASAv10",
                "Internal ATA Compact Flash, 8192MB",
                "Slot 1: ATA Compact Flash, 8192MB",
                "BIOS Flash Firmware Hub @ 0x0, 0KB",
                "",
                " 0: Ext: GigabitEthernet0/0  : address is 0050.56a1.0001, irq 10",
                " 1: Ext: GigabitEthernet0/1  : address is 0050.56a1.0002, irq 5",
                " 2: Ext: Management0/0       : address is 0050.56a1.0003, irq 0",
                "",
                "Licensed features for this platform:",
                "Maximum Physical Interfaces       : 10             perpetual",
                "Maximum VLANs                     : 50             perpetual",
                "Inside Hosts                      : Unlimited      perpetual",
                "Failover                          : Active/Standby perpetual",
                "",
                "Serial Number: 9AJKLM3N4PQ",
                "Image type          : Release",
                "Key Version         : A",
                "",
                modified,
            ]
        )

    def _write_memory(self) -> Reply:
        started = time.monotonic()
        text = self.device.config.render()
        self.device.save(text)
        secs = max(time.monotonic() - started, 0.01)
        size = len(text.encode())
        out = (
            "Building configuration...\n"
            f"Cryptochecksum: {self.device.config.checksum()} \n\n"
            f"{size} bytes copied in {secs:.2f} secs ({size // max(1, int(secs))} bytes/sec)\n"
            "[OK]"
        )
        return Reply(out, self.prompt, saved=True)

    def _enable_password(self, line: str) -> Reply:
        if line == self.device.enable_secret:
            self._awaiting = None
            self.mode = "enable"
            return Reply("", self.prompt)
        self._enable_tries += 1
        if self._enable_tries >= ENABLE_ATTEMPTS:
            self._awaiting = None
            return Reply("Access denied.", self.prompt)
        return Reply("Invalid password", ENABLE_PROMPT, hide_input=True)


def _check_nat(prompt: str, line: str, words: list[str]) -> str | None:
    """Validate ` nat (real,mapped) static|dynamic ADDR [service ...]`; an error text or None."""
    if len(words) < 4:
        return INCOMPLETE
    ifaces = words[1]
    if not (ifaces.startswith("(") and ifaces.endswith(")") and ifaces.count(",") == 1):
        return _caret(prompt, line, 1)
    if words[2].lower() not in ("static", "dynamic"):
        return _caret(prompt, line, 2)
    target = words[3]
    if not (
        valid_ipv4(target) or target == "interface" or target.replace("-", "").replace("_", "").isalnum()
    ):
        return _caret(prompt, line, 3)
    return None
