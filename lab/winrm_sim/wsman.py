"""The WS-Management Windows Remote Shell protocol as pywinrm speaks it: Create (a shell), Command,
Receive, Signal and Delete requests in, SOAP responses and faults out. Pure: no sockets."""

from __future__ import annotations

import base64
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from lab.winrm_sim.shell import Result

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACTION_COMMAND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
ACTION_RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
ACTION_SIGNAL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
ACTION_SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
STATE_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
FAULT_SHELL_NOT_FOUND = (
    2150858843  # "The request for the Windows Remote Shell with ShellId ... failed because the
)
# shell was not found on the server."
FAULT_BAD_ACTION = 2150858891


@dataclass(frozen=True)
class Request:
    action: str
    message_id: str
    shell_id: str | None
    body: ET.Element | None
    to: str


@dataclass
class Shell:
    shell_id: str
    commands: dict[str, Result] = field(default_factory=dict)


class WsmanError(Exception):
    """A WS-Management fault to return with HTTP 500."""

    def __init__(self, code: int, subcode: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason = code, subcode, reason


def parse_request(data: bytes) -> Request:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise WsmanError(
            2150858817, "w:InvalidMessageInformationHeader", f"The request is not valid XML: {e}"
        ) from None
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None:
        raise WsmanError(2150858817, "w:InvalidMessageInformationHeader", "The SOAP envelope has no header.")

    def text(path: str) -> str:
        node = header.find(path, NS) if header is not None else None
        return (node.text or "").strip() if node is not None else ""

    shell_id = None
    for sel in header.findall("w:SelectorSet/w:Selector", NS):
        if sel.get("Name") == "ShellId":
            shell_id = (sel.text or "").strip()
    return Request(text("a:Action"), text("a:MessageID"), shell_id, body, text("a:To"))


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    ns = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items() if k != "p")
    header = (
        f"<s:Header><a:Action>{escape(action)}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
    )
    return f'<s:Envelope xml:lang="en-US" {ns}>{header}<s:Body>{body}</s:Body></s:Envelope>'.encode()


def fault(err: WsmanError, relates_to: str = "") -> bytes:
    body = (
        "<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode>"
        f"<s:Value>{escape(err.subcode)}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(err.reason)}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault Code="{err.code}" Machine="localhost">'
        f"<f:Message>{escape(err.reason)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


class ShellService:
    """The shells open on one simulated host; `handle` answers one request."""

    def __init__(self, execute: Callable[[str, list[str]], Result], address: str) -> None:
        self.execute = execute
        self.address = address
        self.shells: dict[str, Shell] = {}
        self.lock = threading.Lock()

    def _shell(self, req: Request) -> Shell:
        with self.lock:
            shell = self.shells.get(req.shell_id or "")
        if shell is None:
            raise WsmanError(
                FAULT_SHELL_NOT_FOUND,
                "w:InvalidSelectors",
                f"The request for the Windows Remote Shell with ShellId {req.shell_id} failed because "
                "the shell was not found on the server. Possible causes are: the specified ShellId is "
                "incorrect or the shell no longer exists on the server. Provide the correct ShellId or "
                "create a new shell and retry the operation.",
            )
        return shell

    def handle(self, req: Request, on_command: Callable[[str, str, Result], None]) -> bytes:
        """The response envelope for `req`; `on_command(shell_id, command_line, result)` is called
        for each command run."""
        if req.action == ACTION_CREATE:
            shell_id = str(uuid.uuid4()).upper()
            with self.lock:
                self.shells[shell_id] = Shell(shell_id)
            body = (
                f"<x:ResourceCreated><a:Address>{escape(self.address)}</a:Address><a:ReferenceParameters>"
                f"<w:ResourceURI>{SHELL_URI}</w:ResourceURI><w:SelectorSet>"
                f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
                f"</x:ResourceCreated><rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId>"
                f"<rsp:ResourceUri>{SHELL_URI}</rsp:ResourceUri>"
                "<rsp:InputStreams>stdin</rsp:InputStreams>"
                "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
                "</rsp:Shell>"
            )
            return _envelope(ACTION_CREATE + "Response", req.message_id, body)
        if req.action == ACTION_COMMAND:
            shell = self._shell(req)
            cmd_node = req.body.find("rsp:CommandLine/rsp:Command", NS) if req.body is not None else None
            command = (cmd_node.text or "") if cmd_node is not None else ""
            arg_nodes = req.body.findall("rsp:CommandLine/rsp:Arguments", NS) if req.body is not None else []
            args = [(n.text or "") for n in arg_nodes]
            result = self.execute(command.strip(), args)
            command_id = str(uuid.uuid4()).upper()
            with self.lock:
                shell.commands[command_id] = result
            on_command(shell.shell_id, " ".join([command, *args]), result)
            body = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"
            return _envelope(ACTION_COMMAND + "Response", req.message_id, body)
        if req.action == ACTION_RECEIVE:
            shell = self._shell(req)
            stream = req.body.find("rsp:Receive/rsp:DesiredStream", NS) if req.body is not None else None
            command_id = stream.get("CommandId", "") if stream is not None else ""
            with self.lock:
                result = shell.commands.get(command_id)
            if result is None:
                raise WsmanError(2150858843, "w:InvalidSelectors", f"The command {command_id} was not found.")
            cid = quoteattr(command_id)
            streams = ""
            for name, data in (("stdout", result.stdout), ("stderr", result.stderr)):
                if data:
                    encoded = base64.b64encode(data).decode()
                    streams += f'<rsp:Stream Name="{name}" CommandId={cid}>{encoded}</rsp:Stream>'
                streams += f'<rsp:Stream Name="{name}" CommandId={cid} End="true"></rsp:Stream>'
            body = (
                f'<rsp:ReceiveResponse>{streams}<rsp:CommandState CommandId={cid} State="{STATE_DONE}">'
                f"<rsp:ExitCode>{result.exit_code}</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>"
            )
            return _envelope(ACTION_RECEIVE + "Response", req.message_id, body)
        if req.action == ACTION_SIGNAL:
            shell = self._shell(req)
            sig = req.body.find("rsp:Signal", NS) if req.body is not None else None
            if sig is not None:
                with self.lock:
                    shell.commands.pop(sig.get("CommandId", ""), None)
            return _envelope(ACTION_SIGNAL + "Response", req.message_id, "<rsp:SignalResponse/>")
        if req.action == ACTION_SEND:
            self._shell(req)
            return _envelope(ACTION_SEND + "Response", req.message_id, "<rsp:SendResponse/>")
        if req.action == ACTION_DELETE:
            shell = self._shell(req)
            with self.lock:
                self.shells.pop(shell.shell_id, None)
            return _envelope(ACTION_DELETE + "Response", req.message_id, "")
        raise WsmanError(
            FAULT_BAD_ACTION,
            "a:ActionNotSupported",
            f"The action {req.action} is not supported by the service.",
        )
