"""vpsfleet: the fleet model every part of the platform reads (Pulumi, Ansible, scripts)."""

from vpsfleet.fleet import Fleet
from vpsfleet.loader import FleetInvalid, check_fleet, load_fleet
from vpsfleet.problems import Problem

__all__ = ["Fleet", "FleetInvalid", "Problem", "check_fleet", "load_fleet"]
