"""Credentials derived from one operator secret, so that the store and its guests agree on a
password without either sending it to the other and nothing secret is stored in the repository.

Derive from an identity, never from a bare name: a name comes back (a new guest or customer
reusing a terminated one's), an identity does not. The inventory gives each one
(`<name>@<created>`, see vpsfleet/schema.py): a guest's `vpsfleet_identity`, its customer's
`vpsfleet_customer.identity`, and on a store the `identity` of each item of
`vpsfleet_store_guests` and `vpsfleet_store_customers`:

    "{{ vpsfleet_backup_secret | vpsfleet.platform.vpsfleet_derive('backup-write', vpsfleet_identity) }}"
    "{{ vpsfleet_backup_secret
        | vpsfleet.platform.vpsfleet_derive('backup-read', vpsfleet_customer.identity) }}"
    "{{ item.identity | vpsfleet.platform.vpsfleet_salt }}"

A new identity (another `created` under the same name) therefore gets new credentials: that is
also how one guest's or customer's credentials are rotated. The secret comes from the
operator's vault (the lab and the tests generate a throwaway one); changing it rotates all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError


def vpsfleet_derive(secret: str, purpose: str, name: str, length: int = 32) -> str:
    """HMAC-SHA256 of `purpose:name` under `secret`, as `length` letters and digits (base32,
    lower case: safe in FTP, MySQL and shell files alike). `name` is an identity
    (`<name>@<created>`), not a bare name."""
    if not secret or len(str(secret)) < 16:
        raise AnsibleFilterError("vpsfleet_derive: the secret must be at least 16 characters")
    if not 16 <= length <= 52:
        raise AnsibleFilterError("vpsfleet_derive: length must be between 16 and 52")
    mac = hmac.new(str(secret).encode(), f"{purpose}:{name}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().rstrip("=").lower()[:length]


def vpsfleet_salt(name: str, length: int = 16) -> str:
    """A stable crypt salt for `name` (an identity, `<name>@<created>`), so that a hashed
    password file does not change on every run (idempotence) while two accounts, or two
    identities under one name, never share a salt."""
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digest = hashlib.sha256(f"vpsfleet-salt:{name}".encode()).digest()
    return "".join(alphabet[b % 64] for b in digest[:length])


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"vpsfleet_derive": vpsfleet_derive, "vpsfleet_salt": vpsfleet_salt}
