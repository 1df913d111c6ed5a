"""Editing a fleet file as a reviewer will read the diff: round-trip YAML (comments, order and
layout kept), and the whole edited file validated before it atomically replaces the old one.
IPAM and the operations commands (smtp block, suspend, resize, terminate) all edit through here.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from vpsfleet.loader import FleetInvalid, check_fleet
from vpsfleet.problems import Problem


def utc(moment: dt.datetime) -> dt.datetime:
    """Instants in the fleet file are UTC; a naive one is taken as UTC."""
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _represent_datetime(representer: Any, value: dt.datetime) -> Any:
    # The fleet files write instants as 2026-03-02T10:15:00Z; keep that style.
    return representer.represent_scalar(
        "tag:yaml.org,2002:timestamp", utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    )


def round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(dt.datetime, _represent_datetime)
    # A value used twice (a date) is written twice, never as an anchor and an alias: fleet
    # files have none (see yamlread.py).
    yaml.representer.ignore_aliases = lambda _data: True
    return yaml


def load_document(path: Path) -> Any:
    """The file for a round-trip edit. Callers check it first (check_fleet refuses duplicate
    keys, anchors and aliases); a file changed in between is still a problem, not a traceback."""
    try:
        return round_trip().load(path.read_text())
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise FleetInvalid(path, [Problem("", f"cannot edit{where}: {problem}")]) from None


def find_item(doc: Any, sections: tuple[str, ...], name: str) -> CommentedMap | None:
    for section in sections:
        for item in doc.get(section) or []:
            if isinstance(item, CommentedMap) and item.get("name") == name:
                return item
    return None


def write_checked(path: Path, doc: Any, today: dt.date) -> None:
    """Validates the edited document and only then replaces the file, atomically: a refused
    edit leaves the file byte for byte as it was."""
    buffer = io.StringIO()
    round_trip().dump(doc, buffer)
    text = buffer.getvalue()
    _fleet, problems = check_fleet(path, today=today, text=text)
    if problems:
        raise FleetInvalid(path, problems)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fleet-", suffix=".yml")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)


def _split_comment(item: CommentedMap, key: str) -> tuple[Any, str, str] | None:
    """A key's comment token in ruamel holds its own end-of-line comment, then everything that
    follows until the next key (blank lines, comment lines). Returns (token, own, following)."""
    comments = item.ca.items.get(key)
    if not comments or len(comments) < 3 or comments[2] is None:
        return None
    own, _newline, following = comments[2].value.partition("\n")
    return comments[2], own, following


def _set_comment(item: CommentedMap, key: str, template: Any, own: str, following: str) -> None:
    _set_comment_any(item, key, template, own, following)


def insert_after(item: CommentedMap, anchor: str, pairs: list[tuple[str, Any]]) -> None:
    """Inserts keys after `anchor` (at the end if it is absent). What followed the old last key
    (blank lines, comment lines) moves after the new last key; an end-of-line comment stays on
    the key it was written on."""
    keys = list(item.keys())
    position = keys.index(anchor) + 1 if anchor in keys else len(keys)
    for offset, (key, value) in enumerate(pairs):
        item.insert(position + offset, key, value)
    if not keys or position != len(keys):
        return
    split = _split_comment(item, keys[-1])
    if split is None or not split[2]:
        return
    token, own, following = split
    _set_comment(item, keys[-1], token, own, "")
    _set_comment(item, pairs[-1][0], token, "", following)


def delete_keys(item: CommentedMap, *keys: str) -> None:
    """Deletes keys and their own comments; what followed the item (kept on its last key) stays
    after the item, behind the new last key's own end-of-line comment."""
    last = list(item.keys())[-1]
    split = _split_comment(item, last) if last in keys else None
    for key in keys:
        if key in item:
            del item[key]
        item.ca.items.pop(key, None)
    if split is None or not len(item) or not split[2]:
        return
    token, _own, following = split
    new_last = list(item.keys())[-1]
    kept = _split_comment(item, new_last)
    if kept is None:
        _set_comment(item, new_last, token, "", following)
    else:  # its own token knows the column its end-of-line comment was written at
        _set_comment(item, new_last, kept[0], kept[1], following)


def _last_key_holder(node: Any) -> tuple[Any, Any] | None:
    """The mapping (or sequence) and key whose comment token holds what follows `node` in the
    file: ruamel keeps the text after a block on its deepest last key."""
    if isinstance(node, CommentedMap) and len(node):
        key = list(node.keys())[-1]
        return _last_key_holder(node[key]) or (node, key)
    if isinstance(node, CommentedSeq) and len(node):
        return _last_key_holder(node[-1])  # a sequence of scalars keeps its comments otherwise
    return None


def take_trailing(node: Any) -> tuple[Any, str] | None:
    """Detaches the blank lines and comment lines that follow `node` (its own end-of-line
    comments stay), to move them behind another block: (token, text) or None."""
    holder = _last_key_holder(node)
    if holder is None:
        return None
    parent, key = holder
    comments = parent.ca.items.get(key)
    if not comments or len(comments) < 3 or comments[2] is None:
        return None
    own, _newline, following = comments[2].value.partition("\n")
    if not following:
        return None
    _set_comment_any(parent, key, comments[2], own, "")
    return comments[2], following


def put_trailing(node: Any, taken: tuple[Any, str] | None) -> None:
    """Attaches what `take_trailing` detached after `node`'s last line."""
    holder = _last_key_holder(node)
    if taken is None or holder is None:
        return
    parent, key = holder
    token, following = taken
    comments = parent.ca.items.get(key)
    own = ""
    if comments and len(comments) >= 3 and comments[2] is not None:
        own, _newline, _rest = comments[2].value.partition("\n")
        token = comments[2]  # it knows the column its end-of-line comment was written at
    _set_comment_any(parent, key, token, own, following)


def _set_comment_any(parent: Any, key: Any, template: Any, own: str, following: str) -> None:
    if not own and not following:
        parent.ca.items.pop(key, None)
        return
    token = copy.copy(template)
    token.value = own + "\n" + following
    parent.ca.items[key] = [None, None, token, None]
