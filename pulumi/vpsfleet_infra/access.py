"""Who may log in to a guest (M13) and its initial access codes (M4)."""

from __future__ import annotations

import base64
import hashlib
import warnings

# The derivation lives in the fleet model, which the access-codes notice uses too (M4).
from vpsfleet.access_codes import initial_password as initial_password
from vpsfleet.fleet import Fleet
from vpsfleet.schema import Guest, OfferKind


def password_hash(password: str, salt_seed: str) -> str:
    """SHA-512 crypt of the password, so that the seed disk on the host never holds it in clear.
    The salt is derived too: the same password gives the same hash, hence no new seed disk at
    every run. (`crypt` is deprecated but present in Python 3.11, which the project pins.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    salt = base64.b64encode(hashlib.sha256(salt_seed.encode()).digest(), b"./")[:16].decode()
    return crypt.crypt(password, f"$6${salt}")


def is_managed(fleet: Fleet, guest: Guest) -> bool:
    offer = fleet.offer(guest.offer)
    return offer is not None and offer.kind is OfferKind.MANAGED_VPS


def operator_keys(fleet: Fleet) -> list[str]:
    return [key for operator in fleet.provider.operators for key in operator.ssh_keys]


def root_keys(fleet: Fleet, guest: Guest) -> list[str]:
    """M13: on a managed VPS the provider's operators alone are root; otherwise the customer,
    plus, until handover.yml removes it, the provider's hand-over key (docs/handover.md)."""
    if is_managed(fleet, guest):
        return operator_keys(fleet)
    customer = fleet.customer(guest.customer)
    return (list(customer.ssh_keys) if customer else []) + list(fleet.provider.handover_keys)
