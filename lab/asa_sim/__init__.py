"""A Cisco ASA simulator for the rehearsal lab: an SSH server with the ASA's prompts, modes, network
objects with object NAT, `write memory`, and its error texts, faithful enough for netmiko's
`cisco_asa` driver unchanged.

What it models:
- password login at SSH (a wrong password is refused by the SSH server itself), the banner, the
  `asa1>` / `asa1#` / `asa1(config)#` / `asa1(config-network-object)#` prompts, and echo of every
  typed character as a PTY does (input after `Password:` is not echoed);
- `enable` with `Password:` and the enable secret (three tries, then `Access denied.`), `disable`;
- `show curpriv`, `show version`, `show running-config` with the arguments `object`,
  `object network`, `object network NAME`, `nat`, `access-list [NAME]`, `hostname`, and
  `show startup-config`;
- the pager: after `pager lines N` lines (24 in the seed; `terminal pager N` / `terminal pager
  lines N` / `no terminal pager` per session) `<--- More --->` waits for space (next page), Enter
  (next line) or any other key (stop); `terminal width N`;
- `configure terminal`, `end`, `exit`; in config mode `object network NAME` (creates or edits) with
  `host`, `subnet`, `range`, `fqdn [v4|v6]`, `description`, ` nat (real,mapped) static|dynamic X
  [service ...]` and their `no` forms; `no object network NAME`; `hostname NAME`;
  `access-list ...` lines and `no access-list ...` (kept so an object can be "in use");
- `write memory` (and abbreviations such as `write mem`, `wr`), `copy running-config
  startup-config` (asks `Source filename [running-config]?`), `copy /noconfirm running-config
  startup-config`, with the ASA's `Building configuration...` / `Cryptochecksum:` / `N bytes copied
  in X secs` / `[OK]` output;
- errors: the caret line under the bad word then `ERROR: % Invalid input detected at '^' marker.`,
  `ERROR: % Incomplete command`, `ERROR: Object (NAME) does not exist.`, and
  `ERROR: unable to delete object (NAME). Object is being used.` when an access-list, object group
  or twice-NAT line names the object (its own object NAT is removed with it, as on the ASA);
- state: running-config in memory, startup-config in the state folder; a restart reloads
  startup-config, so unsaved changes are lost; every line received is appended to
  `commands.jsonl` in the state folder (passwords masked).

What it does NOT model: `?` help and tab completion; command history and line editing beyond backspace;
multiple contexts (`changeto`) and failover; `login` and AAA command authorization (the SSH user is
always privilege 1 until `enable`); object-groups, service objects, twice NAT, ACL semantics and any
packet processing (NAT lines are configuration text only); `show nat`, `show xlate`, interfaces
commands other than as static configuration text; `reload`; the exact ASA abbreviation rules (any
prefix of two or more letters of a known keyword is accepted); the checksum algorithm (an MD5 of the
configuration text, formatted like the ASA's).
"""
