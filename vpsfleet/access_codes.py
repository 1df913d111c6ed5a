"""A guest's initial access codes (M4): the one derivation of its initial password.

Pure and standard-library only, so that both sides use this same code: the Pulumi program
(pulumi/vpsfleet_infra/access.py writes its hash into the guest's seed) and the access-codes
notice (vpsfleet/notices) that gives it to the customer. The seed is the stack's secret
`vpsfleet:passwordSeed`; neither side ever writes the password anywhere but where it must go.
"""

from __future__ import annotations

import hashlib
import hmac

PASSWORD_LENGTH = 20
# No look-alike characters: the password is read from an e-mail and typed on a console.
PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def initial_password(seed: str, environment: str, guest: str) -> str:
    """Derived from the stack's secret seed, so that it is stable across runs without being
    stored anywhere but the stack's encrypted state (pulumi-random is not used: it would need a
    provider plugin). ~117 bits of entropy given a secret seed."""
    if not seed:
        raise ValueError("the password seed is empty: pulumi config set --secret "
                         "vpsfleet:passwordSeed <random>")
    digest = hmac.new(seed.encode(), f"{environment}/{guest}".encode(), hashlib.sha512).digest()
    return "".join(PASSWORD_ALPHABET[byte % len(PASSWORD_ALPHABET)]
                   for byte in digest[:PASSWORD_LENGTH])
