"""Fleet edits keep what a reviewer reads: comments stay where they were written."""

from __future__ import annotations

import io

from vpsfleet.fleet_edit import delete_keys, insert_after, round_trip

DOC = """guests:
  - name: web1
    image: debian-12  # the base image
    # the next guest
  - name: web2
    image: debian-12
"""


def dump(doc: object) -> str:
    buffer = io.StringIO()
    round_trip().dump(doc, buffer)
    return buffer.getvalue()


def test_an_appended_key_leaves_the_end_of_line_comment_on_its_key() -> None:
    doc = round_trip().load(DOC)
    insert_after(doc["guests"][0], "image", [("ipv4", "198.51.100.4")])
    assert dump(doc) == DOC.replace(
        "# the base image\n", "# the base image\n    ipv4: 198.51.100.4\n"
    )


def test_a_deleted_last_key_leaves_the_following_comment_in_place() -> None:
    doc = round_trip().load(DOC.replace("# the base image\n", "# the base image\n    ipv4: 198.51.100.4\n"))
    delete_keys(doc["guests"][0], "ipv4")
    assert dump(doc) == DOC
