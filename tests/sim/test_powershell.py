"""The WinRM simulator's PowerShell, without HTTP: parsing, binding, errors and output formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.winrm_sim.cmdlets import Host
from lab.winrm_sim.psvalues import PSEnum, PSIPAddress, PSObject, PSTimeSpan, convert_to_json
from lab.winrm_sim.shell import Result, clixml, run_command_line, run_powershell
from lab.winrm_sim.state import HostIdentity, JsonStore, initial_host_state, initial_org_state


@pytest.fixture
def host(tmp_path: Path) -> Host:
    ident = HostIdentity("exchange", "EX13-1", exchange_servers=("EX13-1", "EX13-2"))
    return Host(
        ident,
        JsonStore(tmp_path / "host.json", initial_host_state(ident)),
        JsonStore(tmp_path / "org.json", initial_org_state(ident)),
    )


def run(host: Host, script: str) -> Result:
    return run_powershell(host, script)


def errors(r: Result) -> str:
    return r.stderr.decode()


# -- ConvertTo-Json ----------------------------------------------------------------------------
def test_pretty_json_is_windows_powershell_51_layout() -> None:
    obj = PSObject({"Name": "outlook", "Members": ["EX13-1", "EX13-2"], "Nested": PSObject({"a": 1})})
    assert convert_to_json([obj]) == (
        "{\r\n"
        '    "Name":  "outlook",\r\n'
        '    "Members":  [\r\n'
        '                    "EX13-1",\r\n'
        '                    "EX13-2"\r\n'
        "                ],\r\n"
        '    "Nested":  {\r\n'
        '                   "a":  1\r\n'
        "               }\r\n"
        "}"
    )


@pytest.mark.parametrize(
    ("value", "depth", "expected"),
    [
        pytest.param(PSEnum("Running", 4), 2, 4, id="enum-is-its-number"),
        pytest.param(PSTimeSpan(300), 2, "00:05:00", id="timespan-beyond-depth-is-text"),
        pytest.param(PSIPAddress("10.0.0.28"), 2, "10.0.0.28", id="ipaddress-beyond-depth-is-text"),
        pytest.param(PSIPAddress("10.0.0.28"), 3, 469762058, id="ipaddress-object-within-depth"),
        pytest.param("a'b<c>&", 2, "a'b<c>&", id="escaped-characters-round-trip"),
    ],
)
def test_json_values_two_levels_down(value: object, depth: int, expected: object) -> None:
    record = PSObject({"RecordData": PSObject({"V": value})})
    out = json.loads(convert_to_json([record], depth=depth, compress=True))["RecordData"]["V"]
    got = out["Address"] if isinstance(out, dict) else out
    assert got == expected


def test_compress_and_escapes() -> None:
    out = convert_to_json([PSObject({"Path": "HKLM:\\X", "Q": "it's <b>"})], compress=True)
    assert out == '{"Path":"HKLM:\\\\X","Q":"it\\u0027s \\u003cb\\u003e"}'


# -- parsing and binding -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param("Write-Output 'a' | ConvertTo-Json", '"a"', id="single-quoted"),
        pytest.param(
            "$x = 'v'; Write-Output \"got $x\" | ConvertTo-Json", '"got v"', id="double-quoted-expands"
        ),
        pytest.param("Write-Output 60000 | ConvertTo-Json", "60000", id="number"),
        pytest.param("Write-Output a,b | ConvertTo-Json -Compress", '["a","b"]', id="array-argument"),
        pytest.param(
            "[ipaddress]'10.0.0.28' | Select-Object -ExpandProperty IPAddressToString | ConvertTo-Json",
            '"10.0.0.28"',
            id="cast-and-expand",
        ),
        pytest.param(
            "[System.TimeSpan]::FromSeconds(90) | ConvertTo-Json -Compress -Depth 1", None, id="static-method"
        ),
        pytest.param(
            "Get-Service -Name WinRM | Select-Object -Property Name,Status | ConvertTo-Json -Compress",
            '{"Name":"WinRM","Status":4}',
            id="select-property",
        ),
        pytest.param(
            "get-service -name winrm -ErrorAction Stop | select-object -first 1 -property name | "
            "convertto-json -compress",
            '{"Name":"WinRM"}',
            id="case-insensitive-names",
        ),
        pytest.param(
            "Get-Service -Na WinRM | Select-Object Name | ConvertTo-Json -Co",
            '{"Name":"WinRM"}',
            id="parameter-prefixes",
        ),
        pytest.param(
            "(Get-MailboxDatabase DB01).RpcClientAccessServer | ConvertTo-Json",
            '"EX13-1.corp.example"',
            id="subexpression-member",
        ),
    ],
)
def test_script_forms(host: Host, script: str, expected: str | None) -> None:
    r = run(host, script)
    assert (r.exit_code, errors(r)) == (0, "")
    if expected is not None:
        assert r.stdout.decode().strip() == expected


def test_variable_member_assignment_and_clone(host: Host) -> None:
    r = run(
        host,
        "$a = Get-ClientAccessArray outlook\n$b = $a.Clone()\n$b.Fqdn = 'x.corp.example'\n"
        "Write-Output $a.Fqdn,$b.Fqdn | ConvertTo-Json -Compress",
    )
    assert r.stdout.decode().strip() == '["outlook.corp.example","x.corp.example"]'


@pytest.mark.parametrize(
    ("script", "message", "fqid"),
    [
        pytest.param(
            "Get-Nope",
            "The term 'Get-Nope' is not recognized as the name of a cmdlet",
            "CommandNotFoundException",
            id="unknown-cmdlet",
        ),
        pytest.param(
            "Get-Service -Bogus 1",
            "A parameter cannot be found that matches parameter name 'Bogus'.",
            "NamedParameterNotFound,Microsoft.PowerShell.Commands.GetServiceCommand",
            id="unknown-parameter",
        ),
        pytest.param(
            "Get-Service -Name",
            "Missing an argument for parameter 'Name'.",
            "MissingArgument,Microsoft.PowerShell.Commands.GetServiceCommand",
            id="missing-argument",
        ),
        pytest.param(
            "Get-Service NoSuchSvc",
            "Cannot find any service with service name 'NoSuchSvc'.",
            "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
            id="no-service",
        ),
        pytest.param(
            "Set-ClientAccessArray",
            "missing mandatory parameters: Identity.",
            "MissingMandatoryParameter,",
            id="missing-mandatory",
        ),
        pytest.param(
            "Set-ClientAccessArray outlook -Fqdn 'bad name'",
            "isn't a valid fully qualified domain name",
            "ParameterArgumentTransformationError",
            id="bad-fqdn",
        ),
        pytest.param(
            "Get-ItemProperty 'HKLM:\\SOFTWARE\\Nope'",
            "Cannot find path 'HKLM:\\SOFTWARE\\Nope' because it does not exist.",
            "PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand",
            id="no-registry-key",
        ),
        pytest.param(
            "$x = [ipaddress]'10.0.0.300'",
            'Cannot convert value "10.0.0.300" to type "System.Net.IPAddress"',
            "InvalidCastParseTargetInvocation",
            id="bad-cast",
        ),
        pytest.param(
            "if ($true) { 1 }",
            "not supported by the lab's WinRM simulator",
            "UnexpectedToken",
            id="unsupported-syntax",
        ),
    ],
)
def test_errors(host: Host, script: str, message: str, fqid: str) -> None:
    r = run(host, script)
    assert r.exit_code == 1
    text = errors(r)
    assert text.startswith("#< CLIXML\r\n")
    assert message in text.replace("_x000D__x000A_", "")
    assert f"FullyQualifiedErrorId : {fqid}" in text


def test_error_position_lines(host: Host) -> None:
    r = run(host, "Get-Service WinRM\nGet-Nope -X 1")
    import winrm

    text = winrm.Session("http://127.0.0.1:1/wsman", auth=("u", "p"))._clean_error_msg(r.stderr).decode()
    assert text.splitlines()[1:4] == ["At line:2 char:1", "+ Get-Nope -X 1", "+ ~~~~~~~~"]


@pytest.mark.parametrize(
    ("script", "code"),
    [
        pytest.param("Get-Nope; Get-Service WinRM", 0, id="later-success-resets"),
        pytest.param("Get-Service WinRM; Get-Nope", 1, id="last-statement-failed"),
        pytest.param(
            "$ErrorActionPreference = 'Stop'; Get-Nope; Set-ClientAccessArray outlook -Fqdn a.b",
            1,
            id="stop-preference-halts",
        ),
        pytest.param("Get-Service Nope -ErrorAction SilentlyContinue", 1, id="silent-error-still-fails"),
        pytest.param("exit 3", 3, id="exit-code"),
    ],
)
def test_exit_codes(host: Host, script: str, code: int) -> None:
    assert run(host, script).exit_code == code


def test_stop_preference_stops_before_later_changes(host: Host) -> None:
    run(host, "$ErrorActionPreference = 'Stop'; Get-Nope; Set-ClientAccessArray outlook -Fqdn a.corp.example")
    assert (
        host.org is not None and host.org.read()["client_access_arrays"][0]["Fqdn"] == "outlook.corp.example"
    )


def test_whatif_changes_nothing(host: Host) -> None:
    r = run(host, "Set-ClientAccessArray -Identity outlook -Fqdn new.corp.example -WhatIf")
    assert r.stdout.decode().startswith(
        'What if: Performing the operation "Set-ClientAccessArray" on target "outlook".'
    )
    assert (
        host.org is not None and host.org.read()["client_access_arrays"][0]["Fqdn"] == "outlook.corp.example"
    )


def test_clixml_shape() -> None:
    out = clixml([("Error", "a <b>\r\nline two\r\n")])
    assert out == (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<S S="Error">a &lt;b&gt;_x000D__x000A_</S><S S="Error">line two_x000D__x000A_</S></Objs>'
    )


@pytest.mark.parametrize(
    ("command", "args", "code"),
    [
        pytest.param(
            "powershell -NoProfile -NonInteractive -EncodedCommand "
            "RwBlAHQALQBTAGUAcgB2AGkAYwBlACAAVwBpAG4AUgBNAA==",
            [],
            0,
            id="encoded-with-flags",
        ),
        pytest.param("powershell.exe", ["-Command", "Get-Service", "WinRM"], 0, id="command-flag"),
        pytest.param("powershell -encodedcommand", ["!!notbase64"], 1, id="bad-encoding"),
        pytest.param("net", ["stop", "x"], 9009, id="cmd-unknown"),
    ],
)
def test_command_lines(host: Host, command: str, args: list[str], code: int) -> None:
    assert run_command_line(host, command, args, "Administrator").exit_code == code


def test_unreadable_state_becomes_a_powershell_error(host: Host) -> None:
    host.host.path.write_text("{not json")
    r = run(host, "Get-Service WinRM")
    assert r.exit_code == 1
    assert "The lab's WinRM simulator failed running Get-Service: JSONDecodeError" in errors(r)
