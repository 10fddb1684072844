"""What runs a WinRM command line on the simulated host: `powershell -EncodedCommand ...` (what
pywinrm's `run_ps` sends) through the small PowerShell, a few cmd.exe commands, and cmd.exe's error
for anything else. Returns stdout, stderr (PowerShell's CLIXML) and the exit code."""

from __future__ import annotations

import base64
import binascii
import shlex
from dataclasses import dataclass
from xml.sax.saxutils import escape

from lab.winrm_sim.cmdlets import Host, common_cmdlets, exchange_cmdlets, windows_cmdlets
from lab.winrm_sim.dnscmdlets import dns_cmdlets
from lab.winrm_sim.pslang import Cmdlet, Context, Engine

CLIXML_HEAD = '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
CLIXML_TAIL = "</Objs>"
CMD_NOT_FOUND = (
    "'{name}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
)


@dataclass(frozen=True)
class Result:
    stdout: bytes
    stderr: bytes
    exit_code: int
    script: str | None = None  # the decoded PowerShell script, for the log


def cmdlet_table(role: str) -> dict[str, Cmdlet]:
    """The cmdlets a host of `role` ("exchange" or "dns") has."""
    table = (
        common_cmdlets() + windows_cmdlets() + (exchange_cmdlets() if role == "exchange" else dns_cmdlets())
    )
    return {c.name.lower(): c for c in table}


def clixml(streams: list[tuple[str, str]]) -> str:
    """Error and warning text as powershell.exe writes it to a redirected stderr."""
    parts = []
    for kind, text in streams:
        for line in text.split("\r\n")[:-1] if text.endswith("\r\n") else text.split("\r\n"):
            parts.append(f'<S S="{kind}">{escape(line)}_x000D__x000A_</S>')
    return CLIXML_HEAD + "".join(parts) + CLIXML_TAIL


def run_powershell(host: Host, script: str) -> Result:
    ctx = Context(cmdlets=cmdlet_table(host.ident.role), state=host)
    code = Engine(ctx, script).run()
    err = clixml(ctx.stderr).encode() if ctx.stderr else b""
    return Result("".join(ctx.stdout).encode(), err, code, script)


def _powershell_script(args: list[str]) -> str | None:
    """The script from powershell.exe's arguments: -EncodedCommand (UTF-16LE base64) or -Command."""
    i = 0
    while i < len(args):
        a = args[i].lower()
        if a.startswith(("-", "/")) and len(a) > 1:
            flag = a[1:]
            if flag in ("e", "ec", "en", "enc") or (len(flag) >= 3 and "encodedcommand".startswith(flag)):
                if i + 1 >= len(args):
                    raise ValueError(
                        "Cannot process the command because -EncodedCommand requires an argument."
                    )
                try:
                    return base64.b64decode(args[i + 1], validate=True).decode("utf-16-le")
                except (binascii.Error, UnicodeDecodeError):
                    raise ValueError(
                        "Cannot process the command because the value specified with -EncodedCommand "
                        "is not properly encoded. The value must be Base64 encoded."
                    ) from None
            if flag in ("command", "c"):
                return " ".join(args[i + 1 :])
            if flag in (
                "executionpolicy",
                "ep",
                "outputformat",
                "of",
                "inputformat",
                "if",
                "windowstyle",
                "file",
            ):
                i += 2
                continue
            i += 1
            continue
        return " ".join(args[i:])
    return None


def run_command_line(host: Host, command: str, arguments: list[str], username: str) -> Result:
    """Run what a WinRM Command request asks for, as cmd.exe would start it."""
    line = " ".join([command, *arguments]).strip()
    try:
        words = shlex.split(line, posix=False)
    except ValueError:
        words = line.split()
    if not words:
        return Result(b"", b"", 0)
    name = words[0].lower().removesuffix(".exe")
    if name == "powershell":
        try:
            script = _powershell_script(words[1:])
        except ValueError as e:
            return Result(b"", f"{e}\r\n".encode(), 1)
        if script is None:
            return Result(b"", b"The simulator runs only -EncodedCommand or -Command scripts.\r\n", 1)
        return run_powershell(host, script)
    if name == "hostname":
        return Result(f"{host.ident.server_name}\r\n".encode(), b"", 0)
    if name == "whoami":
        netbios = host.ident.domain.split(".")[0]
        return Result(f"{netbios}\\{username}\r\n".lower().encode(), b"", 0)
    if name == "echo":
        text = line[len(words[0]) :].strip()
        return Result(f"{text}\r\n".encode() if text else b"ECHO is on.\r\n", b"", 0)
    return Result(b"", CMD_NOT_FOUND.format(name=words[0]).encode(), 9009)
