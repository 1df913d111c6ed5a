"""The agent's dump screen (DumpScreen): what the mariadb client would run itself, found as the
client reads a dump (quotes by the SQL modes the dump sets, comments, `/*!` comments, the
delimiter), in chunks of any size; harmless dumps pass (issue 10, #1). The same payloads
against the real client: tests/backup/test_agent_restore.py."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# (dump text, refused?) — every refused case but DELIMITER ' and pager makes the client run
# `touch` when loaded without --sandbox (checked by hand against MariaDB 10.11's client).
CASES = {
    "shell escape": ("\\! touch /tmp/x\n", True),
    "system": ("system touch /tmp/x\n", True),
    "indented system after a statement": ("SELECT 1;\n   system touch /tmp/x\n", True),
    "after a statement": ("SELECT 1; \\! touch /tmp/x\n", True),
    "conditional comment": ("/*!40101 \\! touch /tmp/x */;\n", True),
    "delimiter trick": ("DELIMITER //\nsystem touch /tmp/x;\n", True),
    "odd delimiter": ("DELIMITER '\n", True),
    "source": ("source /etc/passwd\n", True),
    "tee": ("  \\T /tmp/out\n", True),
    "pager": ("pager touch /tmp/x\n", True),
    "use": ("USE `mysql`;\n", True),
    "after a plain comment": ("/* start\n \\! hidden */ \\! touch /tmp/x\n", True),
    "backslash before a closing backtick": ("SELECT 1 AS `a\\`; \\! touch /tmp/x\n", True),
    "no backslash escapes": ("SET sql_mode='NO_BACKSLASH_ESCAPES';\nSELECT 'a\\'; \\! touch /x\n", True),
    "same line": ("SET sql_mode='NO_BACKSLASH_ESCAPES'; SELECT 'a\\'; \\! touch /tmp/x\n", True),
    "ansi quotes": ("/*!40101 SET SQL_MODE='ANSI' */;\nSELECT \"a\\\"; \\! touch /tmp/x\n", True),
    "mode from an expression": (
        "SET @m = CONCAT('NO_BACKSLASH', '_ESCAPES');\nSET sql_mode = @m;\nSELECT 'a\\'; \\! touch /x\n",
        True,
    ),
    "mode over several lines": (
        "SET\nsql_mode\n=\n'NO_BACKSLASH_ESCAPES';\nSELECT 'a\\'; \\! touch /x\n",
        True,
    ),
    "execute immediate": ("EXECUTE IMMEDIATE 'SET sql_mode=\\'NO_BACKSLASH_ESCAPES\\'';\n", True),
    "prepare": ("PREPARE s FROM @q;\nEXECUTE s;\n", True),
    "set statement": ("SET STATEMENT sql_mode='NO_BACKSLASH_ESCAPES' FOR SELECT 1;\n", True),
    "commands in quoted data": (
        "INSERT INTO t VALUES ('\\\\! touch', 'a\\'b', \"x\\\\\", `c`, '\nsystem touch /x\n');\n",
        False,
    ),
    "comments": ("-- \\! in a comment\n/* \\! in a comment */\nSELECT 1;\n# \\! too\n", False),
    "mariadb-dump's first line": ("/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump\n", False),
    "NULL": ("INSERT INTO t VALUES (\\N);\n", False),
    "a routine's body": ("CREATE PROCEDURE p()\nsystem touch /x\n;\n", False),
    "mariadb-dump's modes around a routine": (
        "DELIMITER ;;\n/*!50003 SET @saved_sql_mode = @@sql_mode */ ;;\n"
        "/*!50003 SET sql_mode = 'NO_BACKSLASH_ESCAPES' */ ;;\n"
        "/*!50003 CREATE PROCEDURE p() SELECT 'a\\' */;;\n"
        "/*!50003 SET sql_mode = @saved_sql_mode */ ;;\nDELIMITER ;\nSELECT 'x\\'y';\n",
        False,
    ),
    "dynamic SQL inside a routine": (
        "DELIMITER ;;\nCREATE PROCEDURE q()\nBEGIN\n  PREPARE st FROM @s;\n  EXECUTE st;\n"
        "  SET sql_mode = CONCAT(@@sql_mode, ',ANSI');\nEND ;;\nDELIMITER ;\n",
        False,
    ),
    "data about sql_mode": ("INSERT INTO t VALUES ('SET sql_mode = ANSI; EXECUTE a statement');\n", False),
    "mariadb-dump's prologue": (
        "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n"
        "INSERT INTO t VALUES ('a\\'b');\n/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n",
        False,
    ),
}


def screen(agent: ModuleType, data: bytes, size: int) -> list[str]:
    found = agent.DumpScreen("test")
    for i in range(0, len(data), size):
        found.feed(data[i : i + size])
    return list(found.close())


@pytest.mark.parametrize(("text", "refused"), list(CASES.values()), ids=list(CASES))
def test_client_commands_are_found_in_chunks_of_any_size(agent: ModuleType, text: str, refused: bool) -> None:
    data = text.encode()
    findings = {size: screen(agent, data, size) for size in (len(data), 1, 2, 7)}
    assert all(f == findings[len(data)] for f in findings.values()), findings
    assert bool(findings[len(data)]) == refused, findings[len(data)]
    if refused:
        assert findings[len(data)][0].startswith("line ")


PIECES = [
    "'a\\'b'", "-- c\n", "/* x */", "/*!40101 x */", "1-2", "a*b", "c/d", "\\N", "`q\\`",
    " ", "x", ";", '"s\\"t"', "#h\n", "--x", "\n", "SET sql_mode='ANSI';\n", "DELIMITER ;;\n",
    "DELIMITER ;\n", "\\! t\n", "system t\n", "'", '"', "`",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.integers(min_value=1, max_value=40))
def test_findings_do_not_depend_on_how_the_dump_is_cut(
    agent: ModuleType, pieces: list[str], size: int
) -> None:
    data = "".join(pieces).encode()
    assert screen(agent, data, size) == screen(agent, data, max(len(data), 1))


def test_very_long_lines_are_screened_in_parts(agent: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent.DumpScreen, "PARTIAL", 100)
    data = ("INSERT INTO t VALUES ('" + "a\\'b" * 200 + "'); \\! touch /x\n").encode()
    for size in (1, 50, 333, len(data)):
        assert screen(agent, data, size) == ["line 1: client command \\! outside quoted data"]
