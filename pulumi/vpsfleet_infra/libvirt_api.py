"""The one module that knows pulumi-libvirt (0.5.4, bridging terraform-provider-libvirt 0.8.1).

Moving to another libvirt provider touches this file only. Its traits shape the options below:
every Volume input replaces the volume; `vcpu`, `memory`, `disks` and `xml` replace the domain;
names are ours and fixed, so a replacement must delete before it creates.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi_libvirt as libvirt

import pulumi

GIB = 1024**3


def provider(name: str, *, uri: str, parent: pulumi.Resource) -> pulumi.ProviderResource:
    """One provider per hypervisor host; a qemu+ssh URI names its user and pins host keys
    (the fleet model refuses `no_verify`)."""
    return libvirt.Provider(name, uri=uri, opts=pulumi.ResourceOptions(parent=parent))


def root_volume(name: str, *, pool: str, base_image: str, disk_gb: int,
                provider: pulumi.ProviderResource, parent: pulumi.Resource) -> libvirt.Volume:
    """A guest's dedicated disk (M2), a copy-on-write clone of the host's base image.

    It holds a customer's data, so: protected (deleting it takes an explicit unprotect), its
    size ignored after creation (a plan change grows the disk out of band, never through a
    replacement) and so is the base image it was cloned from (a host's image catalogue moves
    on; the guest's disk does not)."""
    return libvirt.Volume(
        name,
        name=name,
        pool=pool,
        base_volume_name=base_image,
        base_volume_pool=pool,
        format="qcow2",
        size=disk_gb * GIB,
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=provider,
            protect=True,
            ignore_changes=["size", "baseVolumeName", "baseVolumeId", "baseVolumePool"],
            delete_before_replace=True,
        ),
    )


def seed_disk(name: str, *, pool: str, user_data: pulumi.Input[str], network_config: str,
              meta_data: str, provider: pulumi.ProviderResource,
              parent: pulumi.Resource) -> libvirt.CloudInitDisk:
    """The cloud-init NoCloud ISO; a change takes effect at the guest's next boot only."""
    return libvirt.CloudInitDisk(
        name,
        name=name,
        pool=pool,
        user_data=user_data,
        network_config=network_config,
        meta_data=meta_data,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider,
                                    delete_before_replace=True),
    )


def domain(name: str, *, domain_type: str, vcpu: int, ram_mb: int, root_volume: libvirt.Volume,
           seed_disk: libvirt.CloudInitDisk, bridge: str, mac: str, xslt: str,
           provider: pulumi.ProviderResource, parent: pulumi.Resource,
           depends_on: Sequence[pulumi.Resource]) -> libvirt.Domain:
    """The VM, on the host's public bridge with a fixed MAC. Always running: a suspension cuts
    the network through the port filter, never the VM (M7)."""
    return libvirt.Domain(
        name,
        name=name,
        type=domain_type,
        vcpu=vcpu,
        memory=ram_mb,
        autostart=True,
        running=True,
        disks=[libvirt.DomainDiskArgs(volume_id=root_volume.id)],
        cloudinit=seed_disk.id,
        network_interfaces=[libvirt.DomainNetworkInterfaceArgs(bridge=bridge, mac=mac)],
        consoles=[libvirt.DomainConsoleArgs(type="pty", target_port="0",
                                            target_type="serial")],
        xml=libvirt.DomainXmlArgs(xslt=xslt),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider,
                                    delete_before_replace=True, depends_on=list(depends_on)),
    )
