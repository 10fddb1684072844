"""OVF packages on the machine that runs the deploy: an .ovf descriptor with its files beside it, or an
.ova (a tar) read in place. Parses what the import needs and streams each file without unpacking."""

from __future__ import annotations

import os
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

OVF_NS = "http://schemas.dmtf.org/ovf/envelope/1"
RASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
#: CIM resource types in VirtualHardwareSection items
CPU_TYPE, MEMORY_TYPE = "3", "4"
#: AllocationUnits for memory -> factor to MiB
MEMORY_UNITS = {"byte * 2^20": 1, "megabytes": 1, "mb": 1, "byte * 2^30": 1024, "gigabytes": 1024,
                "gb": 1024, "byte * 2^10": 1 / 1024, "byte": 1 / 2**20}


class OvfError(Exception):
    """The package is missing or unusable; the message names the file and the problem."""


@dataclass(frozen=True)
class OvfFile:
    """A file the descriptor references (a disk image, usually)."""

    file_id: str
    href: str
    size: int | None


@dataclass(frozen=True)
class OvfPackage:
    path: str
    descriptor: str
    files: tuple[OvfFile, ...]
    #: files behind DiskSection disks, in disk order (the order the import lease lists device URLs)
    disk_files: tuple[OvfFile, ...]
    cpu: int | None
    memory_mb: int | None
    networks: tuple[str, ...]
    #: ProductSection property ids (class.key.instance when class/instance are set)
    properties: tuple[str, ...]

    @property
    def is_ova(self) -> bool:
        return not self.path.lower().endswith(".ovf")

    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.disk_files)


def _a(elem: ET.Element, attr: str) -> str | None:
    return elem.get(f"{{{OVF_NS}}}{attr}", elem.get(attr))


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except ValueError:
        return None


def _hardware(root: ET.Element) -> tuple[int | None, int | None]:
    cpu = memory = None
    for item in root.iter():
        if not item.tag.endswith("}Item") and item.tag != "Item":
            continue
        rtype = item.findtext(f"{{{RASD_NS}}}ResourceType")
        quantity = _int(item.findtext(f"{{{RASD_NS}}}VirtualQuantity"))
        if rtype == CPU_TYPE and cpu is None:
            cpu = quantity
        elif rtype == MEMORY_TYPE and memory is None and quantity is not None:
            units = (item.findtext(f"{{{RASD_NS}}}AllocationUnits") or "byte * 2^20").strip().lower()
            memory = int(quantity * MEMORY_UNITS.get(units, 1))
    return cpu, memory


def parse_descriptor(path: str, text: str) -> OvfPackage:
    """Pure: the package facts from a descriptor's text. Raises OvfError when it is not an OVF."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise OvfError(f"{path}: the OVF descriptor is not valid XML ({e})") from e
    if root.tag != f"{{{OVF_NS}}}Envelope":
        raise OvfError(f"{path}: not an OVF descriptor (root element {root.tag!r}, expected ovf:Envelope)")
    if root.find(f"{{{OVF_NS}}}VirtualSystem") is None:
        raise OvfError(f"{path}: the OVF descriptor has no VirtualSystem (a VirtualSystemCollection "
                       "cannot be imported as one VM)")
    files = tuple(OvfFile(_a(f, "id") or "", _a(f, "href") or "", _int(_a(f, "size")))
                  for f in root.iterfind(f"{{{OVF_NS}}}References/{{{OVF_NS}}}File"))
    by_id = {f.file_id: f for f in files}
    disk_files: list[OvfFile] = []
    for disk in root.iterfind(f"{{{OVF_NS}}}DiskSection/{{{OVF_NS}}}Disk"):
        ref = _a(disk, "fileRef")
        if ref is None:
            continue  # an empty disk created by the import
        if ref not in by_id:
            raise OvfError(f"{path}: disk {_a(disk, 'diskId')!r} refers to file {ref!r}, "
                           "which References does not list")
        disk_files.append(by_id[ref])
    cpu, memory = _hardware(root)
    networks = tuple(_a(n, "name") or "" for n in
                     root.iterfind(f"{{{OVF_NS}}}NetworkSection/{{{OVF_NS}}}Network"))
    props: list[str] = []
    for section in root.iter(f"{{{OVF_NS}}}ProductSection"):
        cls, inst = _a(section, "class"), _a(section, "instance")
        for prop in section.iter(f"{{{OVF_NS}}}Property"):
            key = _a(prop, "key") or ""
            props.append(".".join(p for p in (cls, key, inst) if p))
    return OvfPackage(path, text, files, tuple(disk_files), cpu, memory, networks, tuple(props))


def _check_size(pkg_path: str, f: OvfFile, actual: int) -> None:
    if f.size is not None and f.size != actual:
        raise OvfError(f"{pkg_path}: {f.href} has {actual} bytes, the descriptor says {f.size}; "
                       "the package is truncated or corrupt")


def load(path: str) -> OvfPackage:
    """Read and check a package: descriptor parsed, every referenced file present with its size."""
    p = Path(path)
    if not p.is_file():
        raise OvfError(f"{path}: no such OVF/OVA file")
    if p.suffix.lower() == ".ovf":
        try:
            pkg = parse_descriptor(path, p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise OvfError(f"{path}: cannot read the OVF descriptor: {e}") from e
        for f in pkg.files:
            member = p.parent / f.href
            if not member.is_file():
                raise OvfError(f"{path}: referenced file {f.href} is missing next to the descriptor")
            _check_size(path, f, member.stat().st_size)
        return pkg
    try:
        with tarfile.open(p, "r:") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            descriptors = [n for n in members if n.lower().endswith(".ovf")]
            if not descriptors:
                raise OvfError(f"{path}: the OVA holds no .ovf descriptor")
            handle = tar.extractfile(members[descriptors[0]])
            assert handle is not None
            pkg = parse_descriptor(path, handle.read().decode("utf-8"))
    except (tarfile.TarError, EOFError) as e:
        raise OvfError(f"{path}: not a readable OVA (tar) archive: {e}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise OvfError(f"{path}: cannot read the OVA: {e}") from e
    for f in pkg.files:
        if f.href not in members:
            raise OvfError(f"{path}: the OVA lacks {f.href}, which the descriptor references")
        _check_size(path, f, members[f.href].size)
    return pkg


@contextmanager
def open_file(pkg: OvfPackage, f: OvfFile) -> Iterator[tuple[IO[bytes], int]]:
    """A read stream of one referenced file and its size; an OVA member is streamed from the tar."""
    if not pkg.is_ova:
        member = Path(pkg.path).parent / f.href
        with open(member, "rb") as fh:
            yield fh, os.fstat(fh.fileno()).st_size
        return
    with tarfile.open(pkg.path, "r:") as tar:
        info = tar.getmember(f.href)
        handle = tar.extractfile(info)
        if handle is None:
            raise OvfError(f"{pkg.path}: {f.href} is not a regular file in the OVA")
        with handle:
            yield handle, info.size
