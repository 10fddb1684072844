"""PowerShell text helpers: literal quoting, ConvertTo-Json shapes, and CLIXML error cleaning."""

from __future__ import annotations

import pytest

from roles.winrm.powershell import JsonOutputError, as_list, clean_error, parse_json, quote

CLIXML_ERROR = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<S S="Error">Set-MailboxDatabase : The operation couldn\'t be performed because object \'DB09\' '
    "couldn't be found._x000D__x000A_</S>"
    '<S S="Error">At line:2 char:1_x000D__x000A_</S>'
    '<S S="Error">+ Set-MailboxDatabase -Identity \'DB09\' -RpcClientAccessServer \'outlook.corp.example\''
    "_x000D__x000A_</S>"
    '<S S="Error">    + CategoryInfo          : NotSpecified: (:) [Set-MailboxDatabase], '
    "ManagementObjectNotFoundException_x000D__x000A_</S></Objs>"
)


@pytest.mark.parametrize(("value", "literal"), [
    ("outlook.corp.example", "'outlook.corp.example'"),
    ("o'brien", "'o''brien'"),
    ("a\u2019b", "'a\u2019\u2019b'"),
    ("$env:PATH `n", "'$env:PATH `n'"),
    ("", "''"),
], ids=["plain", "quote", "typographic-quote", "no-expansion", "empty"])
def test_quote(value, literal):
    assert quote(value) == literal


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\0b"], ids=["lf", "cr", "nul"])
def test_quote_refuses_line_breaks(value):
    with pytest.raises(ValueError, match="line breaks and NUL"):
        quote(value)


@pytest.mark.parametrize(("lines", "objects"), [
    ([], []),
    (["  "], []),
    (['{"Name":"a"}'], [{"Name": "a"}]),
    (['[{"Name":"a"},', '{"Name":"b"}]'], [{"Name": "a"}, {"Name": "b"}]),
], ids=["empty", "blank", "single-object", "array-over-lines"])
def test_json_shapes(lines, objects):
    assert as_list(parse_json(lines)) == objects


@pytest.mark.parametrize(("lines", "message"), [
    (["Name  Fqdn", "----  ----"], "not JSON"),
    (['["a"]'], "expected JSON objects"),
], ids=["formatted-table", "array-of-strings"])
def test_json_errors(lines, message):
    with pytest.raises(JsonOutputError, match=message):
        as_list(parse_json(lines))


def test_clixml_error_becomes_one_line():
    assert clean_error(CLIXML_ERROR) == (
        "Set-MailboxDatabase : The operation couldn't be performed because object 'DB09' couldn't be found.")


def test_plain_error_text_keeps_message_drops_position():
    text = ("Restart-Service : Cannot find any service with service name 'MSExchangeXX'.\r\n"
            "At line:1 char:1\r\n+ Restart-Service -Name MSExchangeXX\r\n+ ~~~~~~~~~~~~~~~\r\n")
    assert clean_error(text) == "Restart-Service : Cannot find any service with service name 'MSExchangeXX'."


def test_unparseable_clixml_is_kept_as_text():
    assert clean_error("#< CLIXML\r\n<Objs><S S=\"Error\">broken") == "#< CLIXML <Objs><S S=\"Error\">broken"
