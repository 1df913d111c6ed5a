"""The fleet file's schema: what each section may hold, checked one item at a time.

Cross-references (a guest's plan exists, addresses are unique...) are checked in `validate.py`;
this module only knows the shape of each item. Every model forbids unknown keys so that a typo
is an error, never a silently ignored setting.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vpsfleet.values import (
    AccountName,
    Address,
    BackupPath,
    CountryCode,
    DatabaseScope,
    Date,
    Days,
    DaysOrZero,
    Email,
    Flag,
    Fqdn,
    Hostname,
    Hours,
    Instant,
    LibvirtUri,
    Line,
    MachineAddress,
    Minutes,
    Network,
    Percent,
    Port,
    PortSpec,
    Positive,
    Quantity,
    Ratio,
    Small,
    SmallOrZero,
    SshKey,
    Text,
    TimeOfDay,
    TimeZone,
    Token,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- policy ----------------------------------------------------------------------------------


class BackupWindow(Strict):
    start: TimeOfDay
    end: TimeOfDay


class SmtpBlockPolicy(Strict):
    # M6: each new block lasts longer; the last duration repeats.
    durations_hours: list[Hours] = Field(min_length=1, max_length=100)
    # From this block on, the provider may refuse to unblock.
    refuse_unblock_from: Small


class SlaPolicy(Strict):
    threshold_minutes: Minutes  # M26: only outages longer than this count
    credit_percent_per_minute: Percent  # M27
    credit_cap_percent: Percent  # M27
    probe: Literal["icmp"]
    time_zone: TimeZone  # the calendar months of the report (M25) are the provider's


class FilterPolicy(Strict):
    filtered_inbound_ports: list[PortSpec]  # M5
    udp_connlimit: Positive
    icmp_connlimit: Positive
    # M5: packets per second per guest tap and direction beyond which the hypervisor's nftables
    # drop UDP / ICMP on the bridge (role hypervisor); nwfilter has no rate match.
    udp_packets_per_second: Positive
    udp_burst_packets: Positive
    icmp_packets_per_second: Positive
    icmp_burst_packets: Positive


class MitigationPolicy(Strict):
    minimum_hours: Hours  # M28; an offer may set its own (Offer.mitigation_minimum_hours)
    profiles: dict[Token, list[PortSpec]]  # profile name -> inbound ports still open
    default_profile: Token  # what a detector's start uses when the guest has no Pro profile

    @model_validator(mode="after")
    def _default_is_a_profile(self) -> MitigationPolicy:
        if self.default_profile not in self.profiles:
            raise ValueError(f"default_profile {self.default_profile!r} is not one of the "
                             f"profiles ({', '.join(sorted(self.profiles))})")
        return self


class AuditPolicy(Strict):
    # M29: the monitors' forbidden-services audit (role monitor, docs/forbidden-services.md).
    time: TimeOfDay  # when the daily audit starts
    max_rate: Small  # nmap --max-rate: packets per second for the whole scan
    version_intensity: int = Field(ge=0, le=9, strict=True)  # nmap --version-intensity
    host_timeout_minutes: Minutes  # nmap --host-timeout per machine
    # The forbidden services' ports per category (docs/forbidden-services.md).
    ports: dict[Literal["open_proxy", "irc", "tor", "vpn", "cardsharing"], list[PortSpec]]


class BackupPolicy(Strict):
    window: BackupWindow  # M18
    default_paths: list[BackupPath] = Field(min_length=1)  # M19
    compression: Literal["gzip", "zstd"]
    quota_disk_multiple: Small  # a customer's store quota, in plan disks
    dead_man_check: TimeOfDay  # when the store checks that every set of the night is there
    # A retention rule never deletes below this many good sets of a guest (a clock that jumps
    # forward must not empty a folder).
    retention_minimum_sets: Small
    # verify-backups.yml flags a guest whose newest set is older than this many nights (M24).
    stale_after_nights: Small = 2


class Policy(Strict):
    backup: BackupPolicy
    filter: FilterPolicy
    smtp_block: SmtpBlockPolicy
    mitigation: MitigationPolicy
    sla: SlaPolicy
    audit: AuditPolicy  # M29
    ipv4_quarantine_days: DaysOrZero
    dedicated_delivery_days: Days  # M12
    plan_change_max_hours: Hours  # M9


# --- provider --------------------------------------------------------------------------------


class Operator(Strict):
    name: AccountName  # an account on every managed VPS (M13)
    ssh_keys: list[SshKey] = Field(min_length=1)


class MailRelay(Strict):
    host: Fqdn  # written into every machine's postfix main.cf
    port: Port


class Provider(Strict):
    name: Line
    operations_email: Email
    support_email: Email  # where the monitor's alerts open tickets (M16)
    relay: MailRelay
    operators: list[Operator] = Field(min_length=1)
    # The key cloud-init puts on root of an unmanaged guest beside its customer's, so that
    # handover.yml can set up the backup annex; the hand-over removes it (M13, docs/handover.md).
    handover_keys: list[SshKey] = []
    # The provider's management path: what a suspended guest may still talk to (M7). No
    # machine address may lie inside (see validate.py).
    management_networks: list[Network]


# --- network and machines --------------------------------------------------------------------


class Pool(Strict):
    name: Hostname
    network: Network
    gateway: Address
    reserved: list[Address] = []


class EdgeRouter(Strict):
    """The datacenter's edge router: it keeps the dedicated servers' network promises (004: M5,
    M6, M7, M28) with the ruleset `vpsfleet edge render` makes (role edge_router)."""

    name: Hostname
    address: MachineAddress  # its management address, where Ansible reaches it


class Datacenter(Strict):
    code: Hostname
    city: Line
    country: CountryCode
    dns_resolvers: list[MachineAddress] = Field(min_length=1)
    pools: list[Pool] = []
    edge_router: EdgeRouter | None = None  # None: nothing filters its dedicated servers


class Capacity(Strict):
    vcpu: Positive
    ram_mb: Positive
    disk_gb: Positive


class Overcommit(Strict):
    # M2: CPU and RAM are shared within this ratio; disk is never overcommitted.
    cpu: Ratio
    ram: Ratio


class HypervisorHost(Strict):
    name: Hostname
    datacenter: str
    uri: LibvirtUri
    domain_type: Literal["kvm", "qemu"]
    ipv4: MachineAddress | None = None
    capacity: Capacity
    overcommit: Overcommit
    bridge: Token
    storage_pool: Token = "default"
    images: dict[Token, Token] = Field(min_length=1)  # image name -> base volume on the host

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
    monthly_quota_tb: Quantity  # M8
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
    no_sla: Flag = False  # the OpenVZ-like range
    backup: Flag  # whether the backup service is part of the offer
    backup_retention_days: Days | None = None  # M22
    restores_per_month: SmallOrZero | None = None  # M23; None = no limit
    # The compressor of its sets; None: policy.backup.compression (an offer may keep gzip).
    backup_compression: Literal["gzip", "zstd"] | None = None
    # M28: a mitigation stays on at least this long; None: policy.mitigation.minimum_hours.
    mitigation_minimum_hours: Hours | None = None

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
    id: AccountName  # its account on its managed VPS and its read account on the store
    # The day the customer was created: with the id, its identity. Credentials derived for it
    # follow the identity, so a new customer that reuses an old id never gets the old one's.
    created: Date
    name: Line
    email: Email
    language: Literal["fr", "en"] = "fr"
    ssh_keys: list[SshKey] = []

    @property
    def identity(self) -> str:
        return f"{self.id}@{self.created.isoformat()}"


class GuestState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class BackupScope(Strict):
    enabled: Flag | None = None  # None: as the offer says
    paths: list[BackupPath] | None = Field(default=None, min_length=1)  # None: policy's default
    databases: DatabaseScope = "all"
    store: str | None = None  # None: a store that serves the guest's datacenter


class SmtpBlock(Strict):
    blocked_at: Instant
    until: Instant | None  # None: indefinite (third block and beyond)
    reason: Text
    lifted_at: Instant | None = None
    lift_reason: Text | None = None
    forced: Flag = False


class Mitigation(Strict):
    since: Instant
    profile: str
    ends_at: Instant | None = None  # recorded by `vpsfleet mitigation stop`; None: still on
    reason: Text | None = None  # what detected it (an attack summary) or who started it


class EdgeRule(Strict):
    """One rule of a Pro customer's edge firewall, applied while a mitigation is on (M28)."""

    action: Literal["accept", "drop"]
    port: PortSpec  # inbound, to the guest
    source: Network | None = None  # None: from anywhere


class ProOption(Strict):
    """The Pro option (M28, 004 art. 9): the customer's own protection profile, used whenever a
    mitigation starts, and its edge firewall rules, applied while the mitigation is on."""

    mitigation_profile: Token | None = None  # None: the profile the operator or detector picks
    edge_rules: list[EdgeRule] = Field(default=[], max_length=50)


class FilterOverrides(Strict):
    open_inbound: list[PortSpec] = []  # removed from the policy's filtered ports
    block_inbound: list[PortSpec] = []  # filtered on top of the policy's


class Guest(Strict):
    name: Hostname
    # The day the guest was ordered: with the name, its identity (see Customer.created).
    created: Date
    customer: str
    offer: str
    plan: str
    host: str
    image: str
    ipv4: MachineAddress | None = None
    state: GuestState = GuestState.ACTIVE
    suspended_on: Date | None = None
    terminated_on: Date | None = None
    maintenance_window: TimeOfDay | None = None
    services: list[Token] = []
    backup: BackupScope = BackupScope()
    smtp_blocks: list[SmtpBlock] = []
    mitigation: Mitigation | None = None
    # Ended mitigations moved aside when a new one starts: kept for M28 disputes and the SLA.
    past_mitigations: list[Mitigation] = []
    pro: ProOption | None = None  # the Pro option (M28)
    filter: FilterOverrides = FilterOverrides()

    @property
    def identity(self) -> str:
        return f"{self.name}@{self.created.isoformat()}"

    @model_validator(mode="after")
    def _dates_match_state(self) -> Guest:
        if self.state is GuestState.TERMINATED and self.terminated_on is None:
            raise ValueError("a terminated guest needs its terminated_on date (M11)")
        if self.state is not GuestState.TERMINATED and self.terminated_on is not None:
            raise ValueError("terminated_on is set but the state is not terminated")
        for field, day in (("suspended_on", self.suspended_on),
                           ("terminated_on", self.terminated_on)):
            if day is not None and day < self.created:
                raise ValueError(f"{field} {day} is before the guest was created ({self.created})")
        return self


class DedicatedServer(Strict):
    name: Hostname
    datacenter: str
    customer: str
    offer: str
    ipv4: MachineAddress | None = None
    paid_on: Date
    due_on: Date | None = None  # None: paid_on + policy.dedicated_delivery_days
    delivered_on: Date | None = None
    # The network promises kept at the datacenter's edge (004: M5, M6, M7, M28), the same
    # operational record as a guest's: the edge router's rules are generated from it.
    state: GuestState = GuestState.ACTIVE
    suspended_on: Date | None = None
    smtp_blocks: list[SmtpBlock] = []
    mitigation: Mitigation | None = None
    past_mitigations: list[Mitigation] = []
    pro: ProOption | None = None
    filter: FilterOverrides = FilterOverrides()

    @model_validator(mode="after")
    def _state_is_kept_at_the_edge(self) -> DedicatedServer:
        if self.state is GuestState.TERMINATED:
            raise ValueError("a dedicated server is active or suspended; remove it to end it")
        if self.suspended_on is not None and self.suspended_on < self.paid_on:
            raise ValueError(f"suspended_on {self.suspended_on} is before paid_on ({self.paid_on})")
        return self


class BackupStore(Strict):
    name: Hostname
    datacenter: str
    address: MachineAddress
    port: Port = 21
    serves: list[str] = Field(min_length=1)  # datacenters whose guests it stores (M20)
    bandwidth_mbps: Positive = 1000
    max_connections: Small = 8


class QuarantinedAddress(Strict):
    ipv4: Address
    released_on: Date
    guest: Hostname


class Monitor(Strict):
    name: Hostname
    datacenter: str
    address: MachineAddress


class MaintenanceWindow(Strict):
    """Planned maintenance (M27: excluded from the SLA): a window, what it covers, why."""

    start: Instant
    end: Instant
    # Guest, host or dedicated server names, datacenter codes, or "all" (checked in validate.py).
    scope: list[Hostname] = Field(min_length=1, max_length=1000)
    reason: Line

    @model_validator(mode="after")
    def _a_window(self) -> MaintenanceWindow:
        for name, moment in (("start", self.start), ("end", self.end)):
            if moment.tzinfo is None:
                raise ValueError(f"{name} must say its time zone (2026-11-23T02:00:00Z or "
                                 "+01:00): a maintenance window is announced to customers")
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start "
                             f"{self.start.isoformat()}")
        return self


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
    "maintenance": MaintenanceWindow,
}
MAPPING_SECTIONS: dict[str, type[BaseModel]] = {"policy": Policy, "provider": Provider}
REQUIRED_SECTIONS = ("environment", "provider", "datacenters", "hosts", "plans", "offers")
