"""The site model (roles/site.py): the lab's site loads; every kind of bad site description is refused at
load with one line naming the file and the field; the inventory refuses a bad site through pyinfra without a
traceback."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from roles.errors import SiteConfigError
from roles.site import check_credentials, load_site, parse_site

REPO = Path(__file__).resolve().parents[2]
LAB_SITE = REPO / "inventory" / "lab.site.toml"


def _base() -> dict[str, Any]:
    return tomllib.loads(LAB_SITE.read_text())


def _error(mutate: Any) -> str:
    data = _base()
    mutate(data)
    with pytest.raises(SiteConfigError) as info:
        parse_site(data, "site.toml")
    return str(info.value)


def test_lab_site_loads_into_the_names_the_roles_read() -> None:
    site = load_site(LAB_SITE)
    data = site.group_data()
    assert data["vip"] == "10.0.0.28" and data["cas_array_fqdn"] == "outlook.corp.example"
    assert data["asa_object_names"] == ["EXCH-SMTP", "EXCH-HTTPS"]
    assert data["balancer_real_servers"] == ["10.0.0.23", "10.0.0.24"]
    assert [s["template"] for s in data["balancer_services"]] == [
        "exchange2013-smtp", "exchange2013-https", "exchange2010-mapi-static"]
    assert data["balancer_services"][0]["health"]["interval"] == 2.0
    assert site.balancer_host_data() == {"vm_name": "exha-lb1", "vm_address": "10.0.0.27",
                                         "balancer_hostname": "lb1"}
    assert data["site"]["devices"]["exchange"] == ["ex13-1", "ex13-2"]


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d["services"][1].__setitem__("template", "exchange2013-htps"),
     "site.toml: services[1].template: unknown template 'exchange2013-htps'; available: "),
    (lambda d: d.__setitem__("vip", "192.168.7.28"),
     "site.toml: vip: 192.168.7.28 is not in the balancer's subnet 10.0.0.0/8 (balancer.address 10.0.0.27/8)"),
    (lambda d: d.__setitem__("real_servers", ["10.0.0.23", "10.0.0.24", "10.0.0.23"]),
     "site.toml: real_servers: real server 10.0.0.23 is listed twice"),
    (lambda d: d["services"][2].__setitem__("real_servers", ["10.0.0.24", "10.0.0.24"]),
     "site.toml: services[2].real_servers: real server 10.0.0.24 is listed twice"),
    (lambda d: d.pop("zone"), "site.toml: zone: missing; this setting is required"),
    (lambda d: d["balancer"].__setitem__("adress", "10.0.0.27"),
     "site.toml: balancer.adress: unknown setting (check the spelling)"),
    (lambda d: d.__setitem__("vip", "10.0.0.300"), "site.toml: vip: '10.0.0.300' is not an IPv4 address"),
    (lambda d: d["cas_array"].__setitem__("fqdn", "mail.corp.example"),
     "site.toml: cas_array.fqdn: mail.corp.example is not outlook.corp.example (the record the zone holds)"),
    (lambda d: d["asa"].__setitem__("objects", ["EXCH SMTP"]),
     "site.toml: asa.objects: 'EXCH SMTP' is not an ASA object name (1-64 characters, no spaces)"),
    (lambda d: d["services"].append(copy.deepcopy(d["services"][0])),
     "site.toml: services[3].name: service 'smtp' is listed twice"),
], ids=["unknown-template", "vip-outside-subnet", "real-server-twice", "service-server-twice", "missing-field",
        "unknown-field", "bad-address", "cas-fqdn-not-in-zone", "bad-object-name", "service-twice"])
def test_bad_site_is_one_line_naming_source_and_field(mutate: Any, expected: str) -> None:
    message = _error(mutate)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_missing_credential_names_the_endpoint_and_field() -> None:
    site = load_site(LAB_SITE)
    creds = {"esxi1": {"host": "h", "username": "root", "password": "p"},
             "dns": {"primary": "p", "zone": "z", "tsig_name": "k", "tsig_secret": "s"},
             "asa1": {"host": "h", "username": "u", "password": "p", "enable_secret": ""},
             **{f"winrm-{h}": {"host": "h", "username": "u", "password": "p"} for h in ("ex13-1", "ex13-2", "dc1")},
             "ssh-lb1": {"user": "root", "key_file": "k", "known_hosts": "kh"}}
    with pytest.raises(SiteConfigError) as info:
        check_credentials(site, creds, "credentials.json")
    assert str(info.value) == "credentials.json: asa1.enable_secret: missing credential"
    del creds["winrm-ex13-2"]
    creds["asa1"]["enable_secret"] = "e"
    with pytest.raises(SiteConfigError) as info:
        check_credentials(site, creds, "credentials.json")
    assert str(info.value) == ("credentials.json: winrm-ex13-2: no credentials for winrm-ex13-2 "
                               "(the site's devices need them)")


def test_inventory_with_a_bad_site_stops_pyinfra_in_one_line(tmp_path: Path) -> None:
    """A copy of inventory/lab.py beside a site whose VIP is outside the balancer's subnet."""
    shutil.copy(REPO / "inventory" / "lab.py", tmp_path / "lab.py")
    text = LAB_SITE.read_text().replace('vip = "10.0.0.28"', 'vip = "172.16.0.28"')
    (tmp_path / "lab.site.toml").write_text(text)
    cp = subprocess.run([str(Path(sys.executable).with_name("pyinfra")), str(tmp_path / "lab.py"),
                         "debug-inventory"], capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
                        env={"PATH": "/usr/bin:/bin", "PYINFRA_PROGRESS": "off",
                             "EXHA_LAB_STATE": str(tmp_path / "state")})
    assert cp.returncode == 1
    assert "Traceback" not in cp.stderr
    assert (f"{tmp_path / 'lab.site.toml'}: vip: 172.16.0.28 is not in the balancer's subnet 10.0.0.0/8"
            in cp.stderr), cp.stderr
