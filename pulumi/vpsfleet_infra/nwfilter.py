"""A Pulumi dynamic provider for a guest's libvirt nwfilter (pulumi-libvirt has none).

State holds the filter's name, the host's libvirt URI and the XML: no secret. Defining a filter
is idempotent in libvirt (the UUID follows from the name), and libvirt applies a redefined
filter to the running guest at once, which is how SMTP blocks, suspensions and mitigations take
effect without touching the domain.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

import pulumi

FIELDS = ("name", "uri", "xml")
REPLACING = ("name", "uri")  # another filter, or the same name on another host


def _connect(uri: str) -> Any:
    import libvirt  # imported here: the provider runs in the engine's dynamic-provider host

    return libvirt.open(uri)


def define(uri: str, xml: str) -> None:
    conn = _connect(uri)
    try:
        conn.nwfilterDefineXML(xml)
    finally:
        conn.close()


def undefine(uri: str, name: str) -> None:
    """Idempotent: a filter that is already gone is fine. libvirt refuses to undefine a filter
    that a running domain uses, so the guest's domain must go first (it depends on the filter)."""
    import libvirt

    conn = _connect(uri)
    try:
        try:
            found = conn.nwfilterLookupByName(name)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_NWFILTER:
                return
            raise
        found.undefine()
    finally:
        conn.close()


def exists(uri: str, name: str) -> bool:
    conn = _connect(uri)
    try:
        return name in conn.listNWFilters()
    finally:
        conn.close()


def _state(props: dict[str, Any]) -> dict[str, Any]:
    return {key: props[key] for key in FIELDS}


class NwFilterProvider(ResourceProvider):
    # Nothing secret is captured: keep the serialized provider readable in the state.
    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> CreateResult:
        define(props["uri"], props["xml"])
        return CreateResult(props["name"], _state(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in FIELDS if olds.get(key) != news.get(key)]
        return DiffResult(
            changes=bool(changed),
            replaces=[key for key in changed if key in REPLACING],
            stables=[],
            delete_before_replace=True,
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        define(news["uri"], news["xml"])
        return UpdateResult(_state(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Drift is the filter's absence (libvirt rewrites the XML it returns, so comparing the
        text would always differ); a missing filter is recreated by the next `pulumi up`."""
        if not exists(props["uri"], props["name"]):
            return ReadResult(None, {})
        return ReadResult(id_, _state(props))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        undefine(props["uri"], props["name"])


class NwFilter(pulumi.dynamic.Resource, module="vpsfleet", name="NwFilter"):
    name: pulumi.Output[str]
    uri: pulumi.Output[str]
    xml: pulumi.Output[str]

    def __init__(self, resource_name: str, *, name: str, uri: str, xml: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(NwFilterProvider(), resource_name,
                         {"name": name, "uri": uri, "xml": xml}, opts)
