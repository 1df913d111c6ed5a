"""The fleet file's schema: what each section may hold, checked one item at a time.

Cross-references (a guest's plan exists, addresses are unique...) are checked in `validate.py`;
this module only knows the shape of each item. Every model forbids unknown keys so that a typo
is an error, never a silently ignored setting.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

HOSTNAME_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PORT_SPEC = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?/(tcp|udp)$")
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _hostname(value: str) -> str:
    if not HOSTNAME_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid hostname label "
            "(lowercase letters, digits and '-', 1-63 characters, no leading or trailing '-')"
        )
    return value


def _port_spec(value: str) -> str:
    match = PORT_SPEC.match(value)
    if not match:
        raise ValueError(f"malformed port {value!r}: expected PORT/PROTO or FIRST-LAST/PROTO")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if not 1 <= first <= 65535 or not 1 <= last <= 65535:
        raise ValueError(f"malformed port {value!r}: ports are 1-65535")
    if last < first:
        raise ValueError(f"malformed port range {value!r}: {last} is below {first}")
    return value


def _time_of_day(value: str) -> str:
    if not TIME_OF_DAY.match(value):
        raise ValueError(f"malformed time {value!r}: expected HH:MM (00:00-23:59)")
    return value


SSH_PUBLIC_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( \S.*)?$"
)


def _ssh_key(value: str) -> str:
    if not SSH_PUBLIC_KEY.match(value):
        start = value[:24] + ("..." if len(value) > 24 else "")
        raise ValueError(
            f"{start!r} is not an OpenSSH public key line (TYPE BASE64 [COMMENT], e.g. ssh-ed25519)"
        )
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]
SshKey = Annotated[str, AfterValidator(_ssh_key)]
PortSpec = Annotated[str, AfterValidator(_port_spec)]
TimeOfDay = Annotated[str, AfterValidator(_time_of_day)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Positive = Annotated[int, Field(gt=0)]
Percent = Annotated[float, Field(ge=0, le=100)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- policy ----------------------------------------------------------------------------------


class BackupWindow(Strict):
    start: TimeOfDay
    end: TimeOfDay


class SmtpBlockPolicy(Strict):
    # M6: each new block lasts longer; the last duration repeats.
    durations_hours: list[Positive] = Field(min_length=1)
    # From this block on, the provider may refuse to unblock.
    refuse_unblock_from: Positive


class SlaPolicy(Strict):
    threshold_minutes: Positive  # M26: only outages longer than this count
    credit_percent_per_minute: Percent  # M27
    credit_cap_percent: Percent  # M27
    probe: Literal["icmp"]


class FilterPolicy(Strict):
    filtered_inbound_ports: list[PortSpec]  # M5
    udp_connlimit: Positive
    icmp_connlimit: Positive


class MitigationPolicy(Strict):
    minimum_hours: Positive  # M28
    profiles: dict[str, list[PortSpec]]  # profile name -> inbound ports still open


class BackupPolicy(Strict):
    window: BackupWindow  # M18
    default_paths: list[str]  # M19
    compression: Literal["gzip", "zstd"]
    quota_disk_multiple: Positive  # a customer's store quota, in plan disks
    dead_man_check: TimeOfDay  # when the store checks that every set of the night is there


class Policy(Strict):
    backup: BackupPolicy
    filter: FilterPolicy
    smtp_block: SmtpBlockPolicy
    mitigation: MitigationPolicy
    sla: SlaPolicy
    ipv4_quarantine_days: Annotated[int, Field(ge=0)]
    dedicated_delivery_days: Positive  # M12
    plan_change_max_hours: Positive  # M9


# --- provider --------------------------------------------------------------------------------


class Operator(Strict):
    name: Hostname
    ssh_keys: list[SshKey] = Field(min_length=1)


class MailRelay(Strict):
    host: str
    port: Positive


class Provider(Strict):
    name: str
    operations_email: Email
    relay: MailRelay
    operators: list[Operator] = Field(min_length=1)
    # The provider's management path: what a suspended guest may still talk to (M7).
    management_networks: list[ipaddress.IPv4Network]


# --- network and machines --------------------------------------------------------------------


class Pool(Strict):
    name: Hostname
    network: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    reserved: list[ipaddress.IPv4Address] = []


class Datacenter(Strict):
    code: Hostname
    city: str
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    dns_resolvers: list[ipaddress.IPv4Address] = Field(min_length=1)
    pools: list[Pool] = []


class Capacity(Strict):
    vcpu: Positive
    ram_mb: Positive
    disk_gb: Positive


class Overcommit(Strict):
    # M2: CPU and RAM are shared within this ratio; disk is never overcommitted.
    cpu: Annotated[float, Field(ge=1)]
    ram: Annotated[float, Field(ge=1)]


class HypervisorHost(Strict):
    name: Hostname
    datacenter: str
    uri: Annotated[str, Field(pattern=r"^qemu(\+ssh)?://")]
    domain_type: Literal["kvm", "qemu"]
    ipv4: ipaddress.IPv4Address | None = None
    capacity: Capacity
    overcommit: Overcommit
    bridge: str
    storage_pool: str = "default"
    images: dict[str, str] = Field(min_length=1)  # image name -> base volume on the host

    @model_validator(mode="after")
    def _ssh_uri_is_pinned(self) -> HypervisorHost:
        if self.uri.startswith("qemu+ssh://"):
            if "@" not in self.uri.split("://", 1)[1].split("/", 1)[0]:
                raise ValueError("a qemu+ssh URI must name its user (qemu+ssh://user@host/system)")
            if "no_verify" in self.uri:
                raise ValueError("never disable host-key checking (no_verify) in a libvirt URI")
            if "knownhosts=" not in self.uri:
                raise ValueError("a qemu+ssh URI must pin host keys with knownhosts=...")
        return self


class Plan(Strict):
    name: Hostname
    vcpu: Positive
    ram_mb: Positive
    disk_gb: Positive
    bandwidth_mbps: Positive  # M8: guaranteed rate
    monthly_quota_tb: Annotated[float, Field(gt=0)]  # M8
    throttle_mbps: Positive  # M8: rate once the quota is spent


class OfferKind(StrEnum):
    UNMANAGED_VPS = "unmanaged_vps"
    MANAGED_VPS = "managed_vps"
    DEDICATED = "dedicated"


class Offer(Strict):
    name: Hostname
    kind: OfferKind
    root: Literal["customer", "provider"]  # M13
    sla_percent: Percent | None  # M25; None with no_sla
    no_sla: bool = False  # the OpenVZ-like range
    backup: bool  # whether the backup service is part of the offer
    backup_retention_days: Positive | None = None  # M22
    restores_per_month: Annotated[int, Field(ge=0)] | None = None  # M23; None = no limit

    @model_validator(mode="after")
    def _consistent(self) -> Offer:
        if self.no_sla and self.sla_percent is not None:
            raise ValueError("an offer with no_sla cannot have an sla_percent")
        if not self.no_sla and self.sla_percent is None:
            raise ValueError("sla_percent is required unless no_sla is true")
        if self.backup and self.backup_retention_days is None:
            raise ValueError("backup_retention_days is required when backup is true")
        if self.kind is OfferKind.MANAGED_VPS and self.root != "provider":
            raise ValueError("on a managed VPS the provider is root (M13)")
        if self.kind is not OfferKind.MANAGED_VPS and self.root != "customer":
            raise ValueError("only a managed VPS has the provider as root (M13)")
        return self


class Customer(Strict):
    id: Hostname
    name: str
    email: Email
    language: Literal["fr", "en"] = "fr"
    ssh_keys: list[SshKey] = []


class GuestState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class BackupScope(Strict):
    enabled: bool | None = None  # None: as the offer says
    paths: list[str] | None = None  # None: the policy's default paths
    databases: Literal["all", "none"] | list[str] = "all"
    store: str | None = None  # None: a store that serves the guest's datacenter


class SmtpBlock(Strict):
    blocked_at: dt.datetime
    until: dt.datetime | None  # None: indefinite (third block and beyond)
    reason: str
    lifted_at: dt.datetime | None = None
    lift_reason: str | None = None
    forced: bool = False


class Mitigation(Strict):
    since: dt.datetime
    profile: str
    ends_at: dt.datetime | None = None


class FilterOverrides(Strict):
    open_inbound: list[PortSpec] = []  # removed from the policy's filtered ports
    block_inbound: list[PortSpec] = []  # filtered on top of the policy's


class Guest(Strict):
    name: Hostname
    customer: str
    offer: str
    plan: str
    host: str
    image: str
    ipv4: ipaddress.IPv4Address | None = None
    state: GuestState = GuestState.ACTIVE
    suspended_on: dt.date | None = None
    terminated_on: dt.date | None = None
    maintenance_window: TimeOfDay | None = None
    services: list[str] = []
    backup: BackupScope = BackupScope()
    smtp_blocks: list[SmtpBlock] = []
    mitigation: Mitigation | None = None
    filter: FilterOverrides = FilterOverrides()

    @model_validator(mode="after")
    def _dates_match_state(self) -> Guest:
        if self.state is GuestState.TERMINATED and self.terminated_on is None:
            raise ValueError("a terminated guest needs its terminated_on date (M11)")
        if self.state is not GuestState.TERMINATED and self.terminated_on is not None:
            raise ValueError("terminated_on is set but the state is not terminated")
        return self


class DedicatedServer(Strict):
    name: Hostname
    datacenter: str
    customer: str
    offer: str
    ipv4: ipaddress.IPv4Address | None = None
    paid_on: dt.date
    due_on: dt.date | None = None  # None: paid_on + policy.dedicated_delivery_days
    delivered_on: dt.date | None = None


class BackupStore(Strict):
    name: Hostname
    datacenter: str
    address: ipaddress.IPv4Address
    port: Annotated[int, Field(ge=1, le=65535)] = 21
    serves: list[str] = Field(min_length=1)  # datacenters whose guests it stores (M20)
    bandwidth_mbps: Positive = 1000
    max_connections: Positive = 8


class QuarantinedAddress(Strict):
    ipv4: ipaddress.IPv4Address
    released_on: dt.date
    guest: str


class Monitor(Strict):
    name: Hostname
    datacenter: str
    address: ipaddress.IPv4Address


# The top-level sections: list sections are validated item by item so that one bad guest does
# not hide the problems of the others.
LIST_SECTIONS: dict[str, type[BaseModel]] = {
    "datacenters": Datacenter,
    "hosts": HypervisorHost,
    "plans": Plan,
    "offers": Offer,
    "customers": Customer,
    "guests": Guest,
    "dedicated_servers": DedicatedServer,
    "backup_stores": BackupStore,
    "monitors": Monitor,
    "quarantine": QuarantinedAddress,
}
MAPPING_SECTIONS: dict[str, type[BaseModel]] = {"policy": Policy, "provider": Provider}
REQUIRED_SECTIONS = ("environment", "provider", "datacenters", "hosts", "plans", "offers")
