"""The ASA simulator's terminal as a raw SSH client sees it: echo, the pager and the banner."""

from __future__ import annotations

import time

import paramiko

from tests.sim.conftest import AsaHandle

MORE = "<--- More --->"


class Shell:
    def __init__(self, asa: AsaHandle) -> None:
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        self.client.connect(
            asa.host, asa.port, asa.username, asa.password, look_for_keys=False, allow_agent=False
        )
        self.chan = self.client.invoke_shell(width=200)

    def until(self, text: str, timeout: float = 5.0) -> str:
        got = ""
        deadline = time.monotonic() + timeout
        while text not in got:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not seen in {got!r}")
            if self.chan.recv_ready():
                got += self.chan.recv(65536).decode()
            else:
                time.sleep(0.01)
        return got

    def send(self, data: str) -> None:
        self.chan.send(data.encode())

    def close(self) -> None:
        self.client.close()


def test_banner_echo_and_pager(asa: AsaHandle) -> None:
    sh = Shell(asa)
    try:
        assert "Type help or '?' for a list of available commands.\r\nasa1> " in sh.until("asa1> ")
        sh.send("enable\n")
        sh.until("Password: ")
        sh.send(asa.secret + "\n")
        after = sh.until("asa1# ")
        assert asa.secret not in after  # the secret is not echoed
        sh.send("show running-config\n")
        first = sh.until(MORE)
        assert first.startswith("show running-config\r\n")  # typed text is echoed
        assert len(first.split("\r\n")[1:-1]) == 24  # pager lines 24 from the configuration
        sh.send(" ")
        second = sh.until(MORE)
        assert second.startswith("\r" + " " * len(MORE) + "\r") and len(second.split("\r\n")) == 25
        sh.send("\r")
        third = sh.until(MORE)
        assert len(third.split("\r\n")) == 2  # Enter shows one more line
        sh.send("q")
        assert sh.until("asa1# ").endswith("\rasa1# ")
        sh.send("terminal pager 0\n")
        sh.until("asa1# ")
        sh.send("show running-config\n")
        whole = sh.until(": end\r\nasa1# ")
        assert MORE not in whole
    finally:
        sh.close()
