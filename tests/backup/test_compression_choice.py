"""Which compressor a guest's sets use (issue 15): zstd, the policy's default, unless the guest's
offer keeps gzip (`backup_compression: gzip`); the inventory plugin gives role `backup_agent` the
choice as `vpsfleet_backup.compression`, and the agent's own default is the policy's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ansible.conftest import REPO, inventory_json
from vpsfleet.loader import FleetInvalid, load_fleet
from vpsfleet_agents.backup.config import parse_config

LAB = REPO / "inventories" / "lab" / "fleet.yml"
# The lab's offer of bravo-vps (the customer-administered VPS with the backup annex).
KEEPS_GZIP = "    backup: true  # the backup annex (M18-M21, M24)\n    backup_retention_days: 15\n"


def lab_with(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the lab fleet with `old` replaced by `new`, and its inventory source."""
    text = LAB.read_text()
    assert text.count(old) == 1, old
    (tmp_path / "fleet.yml").write_text(text.replace(old, new))
    source = tmp_path / "vpsfleet.yml"
    source.write_text("plugin: vpsfleet.platform.vpsfleet\nfleet: fleet.yml\n")
    return source


def compression(inventory: dict[str, Any], guest: str) -> str:
    value: str = inventory["_meta"]["hostvars"][guest]["vpsfleet_backup"]["compression"]
    return value


def test_zstd_is_the_policys_default_and_the_agents() -> None:
    fleet = load_fleet(LAB)  # the lab sets no compression of its own
    assert fleet.policy.backup.compression == "zstd"
    assert all(offer.backup_compression is None for offer in fleet.offers)
    minimal = {"customer": "c1", "guest": "g1",
               "store": {"host": "store", "user": "g1", "password_file": "/p", "ca_file": "/c"}}  # fmt: skip
    assert parse_config(minimal).compression == "zstd"


def test_an_offer_keeps_gzip_and_the_others_take_the_policys(tmp_path: Path) -> None:
    source = lab_with(tmp_path, KEEPS_GZIP, KEEPS_GZIP + "    backup_compression: gzip\n")
    inventory = inventory_json(source)
    assert compression(inventory, "bravo-vps") == "gzip"  # offer unmanaged-backup
    assert compression(inventory, "alpha-web") == "zstd"  # offer managed: the policy's


def test_an_offer_may_also_say_zstd_where_the_policy_says_gzip(tmp_path: Path) -> None:
    source = lab_with(tmp_path, "\npolicy:\n", "\npolicy:\n  backup:\n    compression: gzip\n")
    text = (tmp_path / "fleet.yml").read_text()
    offer_says_zstd = KEEPS_GZIP + "    backup_compression: zstd\n"
    (tmp_path / "fleet.yml").write_text(text.replace(KEEPS_GZIP, offer_says_zstd))
    inventory = inventory_json(source)
    assert compression(inventory, "bravo-vps") == "zstd"
    assert compression(inventory, "alpha-web") == "gzip"


def test_an_unknown_compressor_is_refused_where_it_is_written(tmp_path: Path) -> None:
    lab_with(tmp_path, KEEPS_GZIP, KEEPS_GZIP + "    backup_compression: bzip2\n")
    with pytest.raises(FleetInvalid) as raised:
        load_fleet(tmp_path / "fleet.yml")
    message = str(raised.value)
    assert "backup_compression" in message and "offers" in message, message
