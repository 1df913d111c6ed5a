"""`pulumi up` entry point: everything lives in the vpsfleet_infra package."""

from vpsfleet_infra.program import main

main()
