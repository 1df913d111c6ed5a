"""vpsfleet-traffic: the monthly outbound quota of each guest on a hypervisor host (M8).

Counts each guest's outbound bytes per billing cycle from libvirt's interface statistics,
throttles the guest's outbound rate through libvirt at its plan's quota until the cycle ends,
then restores the plan's rate. See docs/traffic-quota.md.
"""
