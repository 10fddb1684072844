"""A WinRM / PowerShell simulator for the rehearsal lab: a WS-Management endpoint on /wsman that
pywinrm's `Session.run_ps` and `run_cmd` use unchanged, with a small PowerShell that knows only the
cmdlets the toolkit needs, printing what Windows PowerShell 5.1 prints.

What it models:
- HTTP (5985) and HTTPS (5986, any certificate, e.g. one from the lab CA); Basic authentication
  checked on every request (a wrong password is HTTP 401, which pywinrm raises as
  InvalidCredentialsError); the Windows Remote Shell flow Create / Command / Receive / Signal /
  Delete (and Send, accepted and ignored), with WS-Management faults for unknown shells;
- `powershell -EncodedCommand <base64 UTF-16LE>` (what run_ps sends) and `powershell -Command ...`;
  stdout as text with CRLF, errors and warnings on stderr as CLIXML, exit code 1 when the last
  statement failed or a terminating error stopped the script, `exit N`;
- cmd.exe for run_cmd: `hostname`, `whoami`, `echo`; anything else is cmd's "is not recognized as
  an internal or external command" with exit code 9009;
- the language subset and the cmdlets listed in docs/simulators.md (Exchange 2010 CAS array and
  mailbox database cmdlets, registry item properties, services, the DnsServer record cmdlets on the
  DNS role acting on a real BIND zone by TSIG-signed RFC 2136 updates); anything else is
  PowerShell's own "The term 'X' is not recognized as the name of a cmdlet ..." error;
- state as JSON in the state folder (host.json per host, org.json for the Exchange organization,
  shared by the Exchange servers); every request that runs a command is logged with its decoded
  script to commands.jsonl, and every refused login too (never a password).

What it does NOT model: NTLM, Kerberos, CredSSP and certificate authentication, and message
encryption (only Basic, which pywinrm's 'basic', 'plaintext' and 'ssl' transports use); the PSRP
(PowerShell remoting) protocol; stdin (Send) and long-running commands (every command finishes
before Command returns); scriptblocks, `if`/`foreach`, hashtables, operators such as `-eq`,
`Where-Object` and `ForEach-Object` (they are rejected with a parse error naming the simulator);
CIM/WMI objects' extra properties (CimClass, CimInstanceProperties) in ConvertTo-Json output;
PSDrive/PSProvider as objects (they are strings); progress records in CLIXML; console line wrapping;
Active Directory (the organization file stands in for it); services actually stopping anything.
"""
