"""The `@exha-dns/<server>` connector: TSIG-signed DNS over TCP to a zone's primary, RFC 2136 updates,
and verification queries to every authoritative server of the zone.

Calls: `dns.a_record` (read an A rrset from the primary), `dns.zone_nameservers` (NS set -> addresses),
`dns.served_a` (what each nameserver answers), `dns.replace_a` (guarded update, then wait until every
nameserver answers the new rrset), `dns.verify_a` (only the wait). dnspython
timeouts, TSIG failures and rcodes become one line naming the server.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterator
from typing import Any, TypedDict

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
from pyinfra.api.exceptions import InventoryError
from pyinfra.connectors.base import DataMeta

from roles.api import ApiConnector
from roles.dns.records import UPDATE_RCODES, ARecordState, build_update, describe, record_fqdn, zone_name
from roles.errors import DeviceAuthError, DeviceCommandError, DeviceConnectError
from roles.log import host_logger


class DnsData(TypedDict, total=False):
    dns_server: str
    dns_port: int
    dns_zone: str
    dns_tsig_name: str
    dns_tsig_secret: str
    dns_tsig_algorithm: str
    dns_timeout: float
    dns_verify_timeout: float


DATA_META: dict[str, DataMeta] = {
    "dns_server": DataMeta("address of the zone's primary (takes the updates)"),
    "dns_port": DataMeta("DNS port of the primary and of every nameserver checked", 53),
    "dns_zone": DataMeta("zone checked at connect time"),
    "dns_tsig_name": DataMeta("TSIG key name"),
    "dns_tsig_secret": DataMeta("TSIG secret, base64 (secret)"),
    "dns_tsig_algorithm": DataMeta("TSIG algorithm", "hmac-sha256"),
    "dns_timeout": DataMeta("seconds to wait for one DNS answer", 5.0),
    "dns_verify_timeout": DataMeta("seconds to wait until every nameserver answers a change", 30.0),
}

#: pause between verification rounds
VERIFY_INTERVAL = 0.25


class DnsConnector(ApiConnector):
    """A DNS zone's primary, driven with dnspython (TCP, TSIG)."""

    kind = "DNS"
    handles_execution = True
    data_cls = DnsData
    data_meta = DATA_META

    def __init__(self, state: Any, host: Any) -> None:
        super().__init__(state, host)
        self.log = host_logger("roles.dns", host.name)
        self.key: dns.tsig.Key | None = None

    @staticmethod
    def make_names_data(name: str | None = None) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
        if not name:
            raise InventoryError("@exha-dns needs the server's name: @exha-dns/<server>")
        yield f"@exha-dns/{name}", {}, []

    # -- settings ------------------------------------------------------------------------------
    @property
    def server(self) -> str:
        value = self.data.get("dns_server")
        if not value:
            raise DeviceConnectError("host data dns_server is not set (see inventory/lab.py)",
                                     host=self.host.name)
        return str(value)

    @property
    def port(self) -> int:
        return int(self.data.get("dns_port") or 53)

    @property
    def timeout(self) -> float:
        return float(self.data.get("dns_timeout") or 5.0)

    def _tsig_key(self) -> dns.tsig.Key:
        if self.key is None:
            key_name, secret = self.data.get("dns_tsig_name"), self.data.get("dns_tsig_secret")
            if not key_name or not secret:
                raise DeviceConnectError("host data dns_tsig_name and dns_tsig_secret must be set",
                                         host=self.host.name)
            algorithm = str(self.data.get("dns_tsig_algorithm") or "hmac-sha256")
            try:
                base64.b64decode(str(secret), validate=True)
                self.key = dns.tsig.Key(str(key_name), str(secret), algorithm)
            except (binascii.Error, ValueError) as e:
                raise DeviceConnectError("dns_tsig_secret is not valid base64", host=self.host.name) from e
            except dns.exception.DNSException as e:
                raise DeviceConnectError(f"dns_tsig_algorithm {algorithm!r} is not a TSIG algorithm",
                                         host=self.host.name) from e
        return self.key

    # -- wire ------------------------------------------------------------------------------------
    def _exchange(self, message: dns.message.Message, where: str, what: str) -> dns.message.Message:
        """Send `message` over TCP to `where`; map dnspython failures to one-line errors."""
        target = f"{where}:{self.port}"
        try:
            return dns.query.tcp(message, where, timeout=self.timeout, port=self.port)
        except dns.tsig.PeerBadKey as e:
            key = self._tsig_key()
            raise DeviceAuthError(f"{target} does not know TSIG key {key.name.to_text(True)!r} "
                                  f"({key.algorithm.to_text(True)}) for {what}: TSIG BADKEY (PeerBadKey); "
                                  "check dns_tsig_name / dns_tsig_algorithm", host=self.host.name) from e
        except dns.tsig.PeerBadSignature as e:
            raise DeviceAuthError(f"{target} rejected the TSIG signature for {what}: TSIG BADSIG "
                                  "(PeerBadSignature); check dns_tsig_secret", host=self.host.name) from e
        except dns.tsig.PeerBadTime as e:
            raise DeviceAuthError(f"{target} says our clock is off for {what}: TSIG BADTIME",
                                  host=self.host.name) from e
        except (dns.tsig.PeerError, dns.tsig.BadSignature, dns.tsig.BadKey, dns.tsig.BadTime) as e:
            raise DeviceAuthError(f"{target}: TSIG failure for {what}: {e.__class__.__name__}",
                                  host=self.host.name) from e
        except dns.exception.Timeout as e:
            raise DeviceConnectError(f"{target} did not answer {what} within {self.timeout:g}s (dns_timeout)",
                                     host=self.host.name) from e
        except ConnectionRefusedError as e:
            raise DeviceConnectError(f"{target} refused the TCP connection for {what}",
                                     host=self.host.name) from e
        except (OSError, EOFError) as e:
            raise DeviceConnectError(f"{target}: {what}: {e}", host=self.host.name) from e
        except dns.exception.DNSException as e:
            raise DeviceConnectError(f"{target}: {what}: {e.__class__.__name__}: {e}",
                                     host=self.host.name) from e

    def _query(self, where: str, fqdn: str, rdtype: dns.rdatatype.RdataType, signed: bool,
               zone: str) -> dns.message.Message:
        query = dns.message.make_query(fqdn + ".", rdtype)
        query.flags &= ~dns.flags.RD
        if signed:
            query.use_tsig(self._tsig_key())
        what = f"{dns.rdatatype.to_text(rdtype)} {fqdn}"
        response = self._exchange(query, where, what)
        rcode = response.rcode()
        if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH, dns.rcode.SERVFAIL):
            raise DeviceCommandError(f"zone {zone} is not served by {where}:{self.port} "
                                     f"({dns.rcode.to_text(rcode)})", host=self.host.name, command=what)
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DeviceCommandError(f"{where}:{self.port} answered {dns.rcode.to_text(rcode)}",
                                     host=self.host.name, command=what)
        if not response.flags & dns.flags.AA:
            raise DeviceCommandError(f"{where}:{self.port} is not authoritative for zone {zone} "
                                     "(answer without AA): zone not served there", host=self.host.name,
                                     command=what)
        return response

    def open(self) -> None:
        """Check reachability, the TSIG key and that the primary serves dns_zone (signed SOA query)."""
        zone = self.data.get("dns_zone")
        if zone:
            self._query(self.server, zone_name(str(zone)), dns.rdatatype.SOA, signed=True, zone=str(zone))
            self.log.debug("primary %s serves %s, TSIG key accepted", self.server, zone)
        else:
            self._tsig_key()

    # -- reads -----------------------------------------------------------------------------------
    def _read_a(self, where: str, zone: str, fqdn: str, signed: bool) -> ARecordState | None:
        response = self._query(where, fqdn, dns.rdatatype.A, signed=signed, zone=zone)
        name = dns.name.from_text(fqdn + ".")
        for rrset in response.answer:
            if rrset.name == name and rrset.rdtype == dns.rdatatype.CNAME:
                raise DeviceCommandError(f"{fqdn} is a CNAME to {rrset[0].target}; an A record cannot live "
                                         "beside it", host=self.host.name, command=f"A {fqdn}")
            if rrset.name == name and rrset.rdtype == dns.rdatatype.A:
                return {"ttl": int(rrset.ttl), "addresses": sorted((r.address for r in rrset),
                                                                   key=_address_key)}
        return None

    def api_dns_a_record(self, zone: str, record: str) -> ARecordState | None:
        z = zone_name(zone)
        return self._read_a(self.server, z, record_fqdn(z, record), signed=True)

    def api_dns_zone_nameservers(self, zone: str) -> dict[str, list[str]]:
        """{nameserver name: its addresses}, read from the primary (NS set, then each name's A)."""
        z = zone_name(zone)
        response = self._query(self.server, z, dns.rdatatype.NS, signed=True, zone=z)
        names = sorted({r.target.to_text(True).lower() for rrset in response.answer
                        if rrset.rdtype == dns.rdatatype.NS for r in rrset})
        if not names:
            raise DeviceCommandError(f"zone {z} has no NS records at {self.server}", host=self.host.name,
                                     command=f"NS {z}")
        out: dict[str, list[str]] = {}
        for ns in names:
            in_zone = ns == z or ns.endswith("." + z)
            state = self._read_a(self.server, z, ns, signed=True) if in_zone else None
            if state is None:
                raise DeviceCommandError(f"nameserver {ns} of {z} has no A record in the zone; "
                                         "cannot check it",
                                         host=self.host.name, command=f"A {ns}")
            out[ns] = state["addresses"]
        return out

    # -- writes ----------------------------------------------------------------------------------
    def api_dns_replace_a(self, zone: str, record: str, addresses: list[str], ttl: int,
                          expected: list[str] | None, verify_timeout: float | None = None) -> dict[str, Any]:
        """Guarded update on the primary, then wait until every nameserver of the zone answers it."""
        z = zone_name(zone)
        fqdn = record_fqdn(z, record)
        key = self._tsig_key()
        update = build_update(z, fqdn, expected, addresses, ttl, keyring=key, keyname=key.name,
                              keyalgorithm=key.algorithm)
        what = f"update {fqdn} A"
        response = self._exchange(update, self.server, what)
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            cause = UPDATE_RCODES.get(rcode, f"server answered {dns.rcode.to_text(rcode)}")
            raise DeviceCommandError(f"{self.server}:{self.port}: {cause}", host=self.host.name, command=what)
        want: ARecordState = {"ttl": ttl, "addresses": addresses}
        self.log.info("updated %s on %s", describe(fqdn, want), self.server)
        seen = self._wait_until_served(z, fqdn, want, verify_timeout)
        return {"record": fqdn, "addresses": addresses, "ttl": ttl, "nameservers": seen}

    def _served(self, zone: str, fqdn: str, servers: list[str]) -> dict[str, str | ARecordState | None]:
        """What each nameserver answers for `fqdn` (unsigned); a server that fails gives its error text."""
        out: dict[str, str | ARecordState | None] = {}
        for server in servers:
            try:
                out[server] = self._read_a(server, zone, fqdn, signed=False)
            except (DeviceConnectError, DeviceCommandError) as e:   # down or slow: reported, not raised
                out[server] = e.cause
        return out

    def _nameserver_addresses(self, zone: str) -> list[str]:
        return sorted({a for addrs in self.api_dns_zone_nameservers(zone).values() for a in addrs},
                      key=_address_key)

    def api_dns_served_a(self, zone: str, record: str) -> dict[str, str | ARecordState | None]:
        """{nameserver address: its A rrset for record, None, or the error text} for the zone's NS set."""
        z = zone_name(zone)
        return self._served(z, record_fqdn(z, record), self._nameserver_addresses(z))

    def api_dns_verify_a(self, zone: str, record: str, addresses: list[str], ttl: int,
                         verify_timeout: float | None = None) -> dict[str, Any]:
        """Wait until every nameserver answers the rrset the primary already holds (no update)."""
        z = zone_name(zone)
        fqdn = record_fqdn(z, record)
        seen = self._wait_until_served(z, fqdn, {"ttl": ttl, "addresses": addresses}, verify_timeout)
        return {"record": fqdn, "addresses": addresses, "ttl": ttl, "nameservers": seen}

    def _wait_until_served(self, zone: str, fqdn: str, want: ARecordState,
                           verify_timeout: float | None) -> dict[str, str]:
        servers = self._nameserver_addresses(zone)
        limit = float(verify_timeout if verify_timeout is not None
                      else self.data.get("dns_verify_timeout") or 30.0)
        deadline = time.monotonic() + limit
        while True:
            lagging = {s: v if isinstance(v, str) else describe(fqdn, v)
                       for s, v in self._served(zone, fqdn, servers).items() if v != want}
            if not lagging:
                return {s: describe(fqdn, want) for s in servers}
            if time.monotonic() >= deadline:
                detail = "; ".join(f"{s}: {v}" for s, v in lagging.items())
                raise DeviceCommandError(f"the primary holds the change but after {limit:g}s "
                                         f"(dns_verify_timeout) these nameservers still differ: {detail}",
                                         host=self.host.name, command=f"verify {fqdn} A")
            time.sleep(VERIFY_INTERVAL)


def _address_key(address: str) -> tuple[int, ...]:
    return tuple(int(p) for p in address.split("."))
