"""Runs the Pulumi program under Pulumi's mocks and records what the engine would receive.

The mock monitor is extended to keep every registration request whole, options included
(protect, ignoreChanges, deleteBeforeReplace, dependencies, provider), because the plain mocks
only show a resource's inputs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime import mocks, rpc
from vpsfleet_infra.program import build, main

import pulumi
from vpsfleet.fleet import Fleet

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
SEED = "throwaway-test-seed"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    protect: bool
    ignore_changes: list[str]
    delete_before_replace: bool
    dependencies: list[str]
    provider: str


@dataclass
class Run:
    registrations: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, suffix: str) -> list[Registration]:
        return [r for r in self.registrations if r.type.endswith(suffix)]

    def named(self, name: str, type_suffix: str = "") -> Registration:
        found = [r for r in self.registrations if r.name == name and r.type.endswith(type_suffix)]
        assert len(found) == 1, f"{len(found)} registrations named {name!r} ({type_suffix})"
        return found[0]

    def names(self) -> set[str]:
        return {r.name for r in self.registrations}


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        ident = f"{args.name}-id" if args.custom else None
        return ident, dict(args.inputs)

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, run: Run) -> None:
        super().__init__(_Mocks())
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            mocks._ensure_event_loop()  # type: ignore[attr-defined,no-untyped-call]
            inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
            self.run.registrations.append(Registration(
                type=request.type, name=request.name, urn=response.urn, parent=request.parent,
                custom=request.custom, inputs=inputs, protect=bool(request.protect),
                ignore_changes=list(request.ignoreChanges),
                delete_before_replace=request.deleteBeforeReplace,
                dependencies=list(request.dependencies), provider=request.provider,
            ))
        return response


def run_program(fleet: Fleet, now: dt.datetime = NOW) -> Run:
    run = Run()
    pulumi.runtime.set_mocks(_Mocks(), project="vpsfleet", stack=fleet.environment,
                             preview=False, monitor=_RecordingMonitor(run))

    def program() -> pulumi.Output[Any]:
        outputs = build(fleet, now=now, password_seed=pulumi.Output.secret(SEED))
        return pulumi.Output.from_input(outputs).apply(run.outputs.update)

    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    return run


def run_main(stack: str, config: dict[str, str], secret_keys: list[str]) -> Run:
    """Runs `__main__.py`'s entry point as the engine would for `stack`: with the stack's
    config and the working directory the engine uses (the caller chdirs to pulumi/)."""
    run = Run()
    pulumi.runtime.set_mocks(_Mocks(), project="vpsfleet", stack=stack, preview=False,
                             monitor=_RecordingMonitor(run))
    pulumi.runtime.set_all_config(config, secret_keys)
    try:
        pulumi.runtime.test(main)()  # type: ignore[no-untyped-call]
    finally:
        pulumi.runtime.set_all_config({}, [])
    return run
