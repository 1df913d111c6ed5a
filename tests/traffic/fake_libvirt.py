"""A stand-in for a libvirt connection and its domains (camelCase: libvirt's names), for the
job's decisions. It behaves as libvirt 9.0 did against the private libvirtd
(test_libvirt_quota.py): interface parameters take AFFECT_LIVE or AFFECT_CONFIG, never both at
once; statistics of a bridge interface are the guest's view (tx = what the guest sent)."""

from __future__ import annotations

from typing import Any

import libvirt


def error(message: str) -> libvirt.libvirtError:
    """libvirt's exception carrying `message`: libvirtError() itself takes the process's last real
    libvirt error, if any test before raised one, rather than the message it is given."""
    made = libvirt.libvirtError.__new__(libvirt.libvirtError)
    Exception.__init__(made, message)
    made.err = None
    return made


class FakeDomain:
    def __init__(
        self,
        name: str,
        device: str,
        kind: str = "bridge",
        active: bool = True,
        persistent: bool = True,
        refuse_live: str | None = None,
        interfaces: int = 1,
    ) -> None:
        self.mac, self.interfaces = "52:54:00:12:34:56", interfaces
        self._name, self.device, self.kind = name, device, kind
        self.active, self.persistent, self.refuse_live = active, persistent, refuse_live
        self.run_id, self.tx_bytes, self.rx_bytes = 1, 0, 0
        self.live_outbound, self.config_outbound = 0, 0
        self.calls: list[tuple[int, int]] = []  # (flag, kB/s) of each change asked

    def name(self) -> str:
        return self._name

    def isActive(self) -> bool:
        return self.active

    def isPersistent(self) -> bool:
        return self.persistent

    def ID(self) -> int:
        return self.run_id if self.active else -1

    def XMLDesc(self, flags: int = 0) -> str:
        target = f"<target dev='{self.device}'/>"
        nic = f"<interface type='{self.kind}'><mac address='{self.mac}'/>{target}</interface>"
        other = "<interface type='network'><mac address='52:54:00:ff:ff:ff'/></interface>"
        devices = nic + other * (self.interfaces - 1)
        return f"<domain><name>{self._name}</name><devices>{devices}</devices></domain>"

    def interfaceStats(self, device: str) -> tuple[int, ...]:
        assert device in (self.device, self.mac), "libvirt takes a target device or a MAC"
        return (self.rx_bytes, 0, 0, 0, self.tx_bytes, 0, 0, 0)

    def interfaceParameters(self, device: str, flags: int) -> dict[str, int]:
        assert device in (self.device, self.mac)
        value = self.live_outbound if flags == libvirt.VIR_DOMAIN_AFFECT_LIVE else self.config_outbound
        return {"outbound.average": value, "inbound.average": 12_500}

    def setInterfaceParameters(self, device: str, params: dict[str, int], flags: int) -> None:
        if flags not in (libvirt.VIR_DOMAIN_AFFECT_LIVE, libvirt.VIR_DOMAIN_AFFECT_CONFIG):
            raise error(
                "Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive"
            )
        assert device in (self.device, self.mac)
        value = params["outbound.average"]
        self.calls.append((flags, value))
        if flags == libvirt.VIR_DOMAIN_AFFECT_LIVE:
            if self.refuse_live:
                raise error(self.refuse_live)
            self.live_outbound = value
        else:
            self.config_outbound = value

    def restart(self) -> None:
        self.run_id += 1
        self.tx_bytes = self.rx_bytes = 0
        self.live_outbound = self.config_outbound


class FakeConn:
    def __init__(self, *domains: FakeDomain) -> None:
        self.domains = {d.name(): d for d in domains}

    def lookupByName(self, name: str) -> Any:
        if name not in self.domains:
            raise error(f"Domain not found: no domain with matching name '{name}'")
        return self.domains[name]

    def close(self) -> int:
        return 0
