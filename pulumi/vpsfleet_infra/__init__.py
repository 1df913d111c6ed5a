"""The Pulumi program of vpsfleet: component resources for hosts and guests, built from the fleet.

Named so as not to shadow the `pulumi` SDK. `libvirt_api` is the only module that imports
pulumi-libvirt; `nwfilter` holds the dynamic provider for port filters.
"""
