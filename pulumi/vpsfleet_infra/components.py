"""Component resources that make `pulumi preview` read like the fleet: a host, its guests."""

from __future__ import annotations

import datetime as dt

import pulumi
from vpsfleet.filters import guest_filter_xml
from vpsfleet.fleet import Fleet
from vpsfleet.schema import Guest as FleetGuest
from vpsfleet.schema import HypervisorHost
from vpsfleet_infra import cloudinit, identity, libvirt_api
from vpsfleet_infra.access import initial_password
from vpsfleet_infra.domain_xml import interface_xslt
from vpsfleet_infra.nwfilter import NwFilter


class Host(pulumi.ComponentResource):
    """A hypervisor host: its libvirt provider, which every guest on it uses."""

    def __init__(self, host: HypervisorHost, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vpsfleet:infra:Host", host.name, {}, opts)
        self.spec = host
        self.provider = libvirt_api.provider(f"{host.name}-libvirt", uri=host.uri, parent=self)
        self.register_outputs({"uri": host.uri})


class Guest(pulumi.ComponentResource):
    """A VPS: port filter, root volume, cloud-init seed and domain, on its host."""

    def __init__(self, fleet: Fleet, guest: FleetGuest, host: Host, *, now: dt.datetime,
                 password_seed: pulumi.Output[str]) -> None:
        super().__init__("vpsfleet:infra:Guest", guest.name, {},
                         pulumi.ResourceOptions(parent=host))
        spec = host.spec
        plan = fleet.plan(guest.plan)
        if plan is None:
            raise ValueError(f"guest {guest.name}: unknown plan {guest.plan!r}")
        if guest.image not in spec.images:
            raise ValueError(f"guest {guest.name}: host {spec.name} has no image {guest.image!r}")
        if guest.ipv4 is None:
            raise ValueError(f"guest {guest.name} has no IPv4: run `vpsfleet ipam allocate` first")
        self.mac = identity.mac_address(guest.name)
        self.interface = identity.interface_name(guest.name)
        self.filter_name = identity.filter_name(guest.name)

        # The filter exists before the domain that references it (M5); its rules are the only
        # thing an SMTP block, a suspension or a mitigation changes.
        self.filter = NwFilter(
            f"{guest.name}-filter",
            name=self.filter_name,
            uri=spec.uri,
            xml=guest_filter_xml(fleet, guest, now),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.volume = libvirt_api.root_volume(
            identity.root_volume_name(guest.name),
            pool=spec.storage_pool,
            base_image=spec.images[guest.image],
            disk_gb=plan.disk_gb,
            provider=host.provider,
            parent=self,
        )
        password: pulumi.Output[str] = password_seed.apply(
            lambda seed: initial_password(seed, fleet.environment, guest.name))
        self.password: pulumi.Output[str] = pulumi.Output.secret(password)
        self.seed_disk = libvirt_api.seed_disk(
            identity.seed_disk_name(guest.name),
            pool=spec.storage_pool,
            user_data=pulumi.Output.secret(self.password.apply(
                lambda password: cloudinit.user_data(fleet, guest, password))),
            network_config=cloudinit.network_config(fleet, guest),
            meta_data=cloudinit.meta_data(guest),
            provider=host.provider,
            parent=self,
        )
        self.domain = libvirt_api.domain(
            guest.name,
            domain_type=spec.domain_type,
            vcpu=plan.vcpu,
            ram_mb=plan.ram_mb,
            root_volume=self.volume,
            seed_disk=self.seed_disk,
            bridge=spec.bridge,
            mac=self.mac,
            xslt=interface_xslt(mac=self.mac, interface=self.interface,
                                filter_name=self.filter_name, ipv4=str(guest.ipv4),
                                bandwidth_mbps=plan.bandwidth_mbps),
            provider=host.provider,
            parent=self,
            depends_on=[self.filter],
        )
        self.outputs = {
            "host": spec.name,
            "ipv4": str(guest.ipv4),
            "mac": self.mac,
            "interface": self.interface,
            "filter": self.filter_name,
            "state": guest.state.value,
        }
        self.register_outputs(dict(self.outputs))
