"""The balancer appliance as an OVF package: the descriptor, a placeholder disk and the OVA around them.

The toolkit's vSphere role imports this into the lab's ESXi. The simulator stores the disk's bytes
and never boots them: the lab agent boots the Debian root filesystem when the VM is powered on.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

APPLIANCE_NAME = "exha-balancer"
DISK_CAPACITY_GIB = 2
_DISK_MAGIC = b"# exchange-ha balancer appliance placeholder disk (the lab boots a Debian rootfs instead)\n"


@dataclass(frozen=True)
class ApplianceSpec:
    """What the descriptor declares."""

    cpus: int = 2
    memory_mb: int = 2048
    network: str = "VM Network"


@dataclass(frozen=True)
class OvfFiles:
    """An unpacked OVF package: descriptor, disk and manifest."""

    ovf: Path
    disk: Path
    manifest: Path


PROPERTIES = (  # key, type, default, label
    ("hostname", "string", "lb1", "Host name"),
    ("ip0", "string", "", "IPv4 address of eth0 (empty: first-boot address)"),
    ("netmask0", "string", "255.0.0.0", "IPv4 netmask of eth0"),
    ("gateway", "string", "10.0.0.1", "Default gateway"),
    ("DNS", "string", "10.0.0.10", "DNS servers, comma separated"),
)


def _property_xml() -> str:
    return "\n".join(
        f'      <Property ovf:key="{key}" ovf:type="{typ}" ovf:userConfigurable="true" '
        f'ovf:value="{default}">\n        <Label>{label}</Label>\n      </Property>'
        for key, typ, default, label in PROPERTIES
    )


def _check(spec: ApplianceSpec) -> None:
    if not 1 <= spec.cpus <= 2 or not 1024 <= spec.memory_mb <= 2048:
        raise LabError(f"appliance: cpus must be 1-2 and memory_mb 1024-2048, "
                       f"got {spec.cpus}, {spec.memory_mb}")


def descriptor(spec: ApplianceSpec, disk_name: str, disk_size: int) -> str:
    """The OVF 1.0 descriptor text."""
    _check(spec)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
          xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
          xmlns:vmw="http://www.vmware.com/schema/ovf"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:id="file1" ovf:href="{disk_name}" ovf:size="{disk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="{DISK_CAPACITY_GIB}"
          ovf:capacityAllocationUnits="byte * 2^30"
          ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The logical networks used by the package</Info>
    <Network ovf:name="{spec.network}">
      <Description>The network the balancer's eth0 joins</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{APPLIANCE_NAME}">
    <Info>exchange-ha load balancer appliance (Debian 12)</Info>
    <Name>{APPLIANCE_NAME}</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian12_64Guest">
      <Info>Debian GNU/Linux 12 (64-bit)</Info>
    </OperatingSystemSection>
    <ProductSection ovf:required="false">
      <Info>Network settings applied on first boot</Info>
      <Product>exchange-ha balancer</Product>
      <Vendor>exchange-ha</Vendor>
{_property_xml()}
    </ProductSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{APPLIANCE_NAME}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of virtual CPUs</rasd:Description>
        <rasd:ElementName>{spec.cpus} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{spec.cpus}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory size</rasd:Description>
        <rasd:ElementName>{spec.memory_mb}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{spec.memory_mb}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>{spec.network}</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on "{spec.network}"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_ovf(folder: Path, spec: ApplianceSpec = ApplianceSpec()) -> OvfFiles:
    """Write the unpacked package (descriptor, disk, manifest) into `folder`."""
    _check(spec)
    folder.mkdir(parents=True, exist_ok=True)
    disk = folder / f"{APPLIANCE_NAME}-disk1.vmdk"
    disk.write_bytes(_DISK_MAGIC + bytes(64 * 1024 - len(_DISK_MAGIC)))
    ovf = folder / f"{APPLIANCE_NAME}.ovf"
    ovf.write_text(descriptor(spec, disk.name, disk.stat().st_size))
    manifest = folder / f"{APPLIANCE_NAME}.mf"
    manifest.write_text("".join(f"SHA256({p.name})= {_sha256(p)}\n" for p in (ovf, disk)))
    return OvfFiles(ovf=ovf, disk=disk, manifest=manifest)


def build_ova(path: Path, spec: ApplianceSpec = ApplianceSpec()) -> Path:
    """Write the appliance as an OVA (a tar with the descriptor first) at `path`; returns `path`."""
    _check(spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".d")
    files = write_ovf(staging, spec)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member in (files.ovf, files.manifest, files.disk):
            tar.add(member, arcname=member.name)
    for member in (files.ovf, files.manifest, files.disk):
        member.unlink()
    staging.rmdir()
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m lab.vm.appliance OUT.ova [--cpus N] [--memory-mb M]`: write the appliance."""
    parser = argparse.ArgumentParser(prog="lab.vm.appliance", description="Write the balancer appliance OVA.")
    parser.add_argument("output", type=Path)
    parser.add_argument("--cpus", type=int, default=ApplianceSpec.cpus)
    parser.add_argument("--memory-mb", type=int, default=ApplianceSpec.memory_mb)
    args = parser.parse_args(argv)
    try:
        print(build_ova(args.output, ApplianceSpec(cpus=args.cpus, memory_mb=args.memory_mb)))
    except LabError as e:
        print(f"lab.vm.appliance: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
