"""The dump screen (the agent's DumpScreen, also the verifier's): what the mariadb client would
run itself, found as the client reads a dump (quotes by the SQL modes the dump sets, comments,
`/*!` comments, the delimiter, statements mid-line), in chunks of any size; harmless dumps and
real ones pass (issue 10, #1).

Every case of the table is also fed to the real client WITHOUT --sandbox on a throwaway server
(`test_the_table_says_what_the_real_client_runs`): "runs" cases make it run `touch`, the others
do not. The same payloads against the agent's restore: tests/backup/test_agent_restore.py; the
verifier's: tests/backup/test_verify_backup.py."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.backup.conftest import MariaDB
from vpsfleet_agents.backup.dump_screen import DumpScreen

# What mariadb-dump writes before any data: the SQL mode is known from there on.
PROLOGUE = "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n"
KNOWN = "SET sql_mode='';\n"  # the test server's default has neither NO_BACKSLASH_ESCAPES nor ANSI_QUOTES

# id: (dump text, verdict). {m} is a marker file, {source} a file holding `\! touch {m}`.
# "runs": the real client without --sandbox runs the command (the marker appears) and the
# screen refuses the dump; "refused": the screen refuses, the client runs no command (a client
# command without a marker, a dump the screen cannot read as surely as the client); "passes":
# the screen passes it and the client runs nothing.
CASES: dict[str, tuple[str, str]] = {
    # Backslash commands, anywhere outside quoted data.
    "shell escape": ("\\! touch {m}\n", "runs"),
    "after a statement": ("SELECT 1; \\! touch {m}\n", "runs"),
    "conditional comment": ("/*!40101 \\! touch {m} */;\n", "runs"),
    "after a plain comment": ("/* start\n \\! hidden */ \\! touch {m}\n", "runs"),
    "source, short form": ("\\. {source}\n", "runs"),
    "tee, short form": ("  \\T {m}\n", "refused"),
    "pager, short form": ("\\P touch {m}\nSELECT 1;\n", "refused"),
    "dashes without a blank mid-statement": ("SELECT 1 --\\! touch {m}\n", "runs"),
    # Command words, first in a statement: on a line of their own, or after a delimiter.
    "system": ("system touch {m}\n", "runs"),
    "system, mixed case": ("SELECT 1;\n  SyStEm touch {m}\n", "runs"),
    "system after a statement on the same line": ("SELECT 1; system touch {m};\n", "runs"),
    "system after a comment": ("/* c */ system touch {m};\n", "runs"),
    "system after a delimiter inside /*!": ("/*!40101 ;\nsystem touch {m} */\n", "runs"),
    "source": ("source {source}\n", "runs"),
    "source after a statement on the same line": ("SELECT 1 /* c */; source {source}\n", "runs"),
    "tee": ("tee {m}\n", "refused"),
    "pager": ("pager touch {m}\nSELECT 1;\n", "refused"),
    "use": ("USE `mysql`;\n", "refused"),
    "connect": ("connect shop 192.0.2.1\n", "refused"),
    "quit (the rest is not loaded)": ("quit\n", "refused"),
    "quit after a statement": ("SELECT 1; quit\n", "refused"),
    "a byte-order mark before a command": ("\ufeffsystem touch {m}\n", "runs"),
    # DELIMITER: mariadb-dump's lines only.
    "delimiter trick": ("DELIMITER //\nsystem touch {m};\n", "runs"),
    "quote as delimiter": ("DELIMITER '\nSELECT 1'\n\\! touch {m}\nDELIMITER ;\n", "runs"),
    "odd delimiter": ("DELIMITER //\n", "refused"),
    "delimiter after a statement": ("SELECT 1; DELIMITER ;;\n", "refused"),
    # Comments as the client reads them.
    "dashes first in a statement": ("--'\n\\! touch {m}\n", "runs"),
    "dashes ending a line": ("--\nsystem touch {m}\n", "runs"),
    "dashes without a blank after a statement": ("SELECT 1; --x\nsystem touch {m}\n", "runs"),
    "dashes without a blank first in a statement": ("--\\! touch {m}\n", "passes"),
    "a comment inside /*!": ("/*!40101 /* */ ' */ \n\\! touch {m}\n", "runs"),
    "/*! inside a comment": ("/* /*! */ ' */ \n\\! touch {m}\n", "runs"),
    "comments": ("-- \\! in a comment\n/* \\! in a comment */\nSELECT 1;\n# \\! too\n", "passes"),
    # Quoted data, as the SQL mode makes the client read it.
    "backslash before a closing backtick": (KNOWN + "SELECT 1 AS `a\\`; \\! touch {m}\n", "runs"),
    "backtick over lines": (KNOWN + "SELECT `a\\`;\n\\! touch {m}\n`;\n", "runs"),
    "no backslash escapes": ("SET sql_mode='NO_BACKSLASH_ESCAPES';\nSELECT 'a\\'; \\! touch {m}\n", "runs"),
    "no backslash escapes, same line": (
        "SET sql_mode='NO_BACKSLASH_ESCAPES'; SELECT 'a\\'; \\! touch {m}\n",
        "runs",
    ),
    "ansi quotes": ("/*!40101 SET SQL_MODE='ANSI' */;\nSELECT \"a\\\"; \\! touch {m}\n", "runs"),
    "a mode that implies ANSI_QUOTES": ("SET sql_mode='ORACLE';\nSELECT \"a\\\" \\! touch {m}\n", "runs"),
    "mode over several lines": (
        "SET\nsql_mode\n=\n'NO_BACKSLASH_ESCAPES';\nSELECT 'a\\'; \\! touch {m}\n",
        "runs",
    ),
    "mode from an expression": (
        "SET @m = CONCAT('NO_BACKSLASH', '_ESCAPES');\nSET sql_mode = @m;\nSELECT 'a\\'; \\! touch {m}\n",
        "runs",
    ),
    "mode from two strings": (
        KNOWN + "SET sql_mode='NO_BACKSLASH' '_ESCAPES';\nSELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "escape in a mode's name": (
        KNOWN + "SET sql_mode='NO_BACKSLASH_ESCAP\\ES';\nSELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "sql_mode in backquotes": (
        KNOWN + "SET `sql_mode` = 'NO_BACKSLASH_ESCAPES';\nSELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "SET GLOBAL sql_mode": (
        KNOWN + "SET GLOBAL sql_mode='NO_BACKSLASH_ESCAPES';\nSELECT 'a\\' ' \\! touch {m}\n",
        "runs",
    ),
    "a mode the server refuses": (
        KNOWN + "SET sql_mode='NO_BACKSLASH_ESCAPES,BOGUS';\nSELECT 'a\\' ' \\! touch {m}\n",
        "runs",
    ),
    "a version comment the server skips": (
        KNOWN + "/*M!999999 x */ SET sql_mode='NO_BACKSLASH_ESCAPES';\nSELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "mode set in an unclosed /*!": (KNOWN + "/*!40101 SET sql_mode='NO_BACKSLASH_ESCAPES';\n", "refused"),
    "a saved mode changed before it is restored": (
        KNOWN + "SET @saved_sql_mode = @@sql_mode;\nSET @'saved_sq\\l_mode' = 'NO_BACKSLASH_ESCAPES';\n"
        "SET sql_mode = @saved_sql_mode;\nSELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "a backslash while the mode is not known": ("SELECT 'a\\' \\! touch {m}\n", "refused"),
    "SET DEFAULT, then a backslash": ("SET sql_mode=DEFAULT;\nSELECT 'a\\' ' \\! touch {m}\n", "runs"),
    "just a mode change": ("SET sql_mode='NO_BACKSLASH_ESCAPES';\n", "passes"),
    "just ANSI": ("SET sql_mode='ANSI';\n", "passes"),
    # What changes the SQL mode out of the screen's sight.
    "execute immediate": (
        KNOWN + "EXECUTE IMMEDIATE 'SET sql_mode=\\'NO_BACKSLASH_ESCAPES\\'';\nSELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "prepare": ("PREPARE s FROM @q;\nEXECUTE s;\n", "refused"),
    "set statement": ("SET STATEMENT sql_mode='NO_BACKSLASH_ESCAPES' FOR SELECT 1;\n", "refused"),
    "a procedure that sets the mode": (
        KNOWN + "CREATE PROCEDURE p1() SET sql_mode='NO_BACKSLASH_ESCAPES';\nCALL p1();\n"
        "SELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "a trigger that sets the mode": (
        KNOWN + "CREATE TABLE tt (a INT);\n"
        "CREATE TRIGGER tr BEFORE INSERT ON tt FOR EACH ROW SET sql_mode='NO_BACKSLASH_ESCAPES';\n"
        "INSERT INTO tt VALUES (1);\nSELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "a compound statement": (
        KNOWN + "DELIMITER ;;\nBEGIN NOT ATOMIC SET sql_mode='NO_BACKSLASH_ESCAPES'; END;;\nDELIMITER ;\n"
        "SELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "a statement after a routine's body": (
        KNOWN + "DELIMITER ;;\nCREATE PROCEDURE p8() SELECT 1; "
        "EXECUTE IMMEDIATE CONCAT('SET sql', '_mode=''NO_BACKSLASH_ESCAPES''');;\nDELIMITER ;\n"
        "SELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "several statements as one": (
        KNOWN
        + "DELIMITER ;;\nSELECT 1; EXECUTE IMMEDIATE CONCAT('SET sql', '_mode=''NO_BACKSLASH_ESCAPES''');;\n"
        "DELIMITER ;\nSELECT 'a\\' \\! touch {m}\n",
        "runs",
    ),
    "a NUL byte": (PROLOGUE + "SELECT 1;\x00\n", "refused"),
    # Harmless: data, and what mariadb-dump writes.
    "commands in quoted data": (
        PROLOGUE
        + "INSERT INTO t VALUES ('\\\\! touch {m}', 'a\\'b', \"x\\\\\", `c`, '\nsystem touch {m}\n');\n",
        "passes",
    ),
    "commands in a string over lines": (PROLOGUE + "SELECT 'a\\';\n\\! touch {m}\n';\n", "passes"),
    "a command word as data": ("SELECT 'system';\n", "passes"),
    "mariadb-dump's first line": ("/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump\n", "passes"),
    "NULL": ("INSERT INTO t VALUES (\\N);\n", "passes"),
    "a routine's body": ("CREATE PROCEDURE p()\nsystem touch {m}\n;\n", "passes"),
    "mariadb-dump's prologue": (
        PROLOGUE + "INSERT INTO t VALUES ('a\\'b');\n/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n",
        "passes",
    ),
    "mariadb-dump's modes around a routine": (
        PROLOGUE + "/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;\n"
        "/*!50003 SET sql_mode              = 'REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ANSI,"
        'NO_BACKSLASH_ESCAPES\' */ ;\nDELIMITER ;;\nCREATE DEFINER="root"@"localhost" PROCEDURE "p2"()\n'
        "SELECT 'a\\', \"col\"\n;;\nDELIMITER ;\n/*!50003 SET sql_mode              = @saved_sql_mode */ ;\n"
        "INSERT INTO t VALUES ('x\\'y');\n",
        "passes",
    ),
    "a routine with blocks, handlers and dynamic SQL": (
        PROLOGUE + "DELIMITER ;;\nCREATE DEFINER=`root`@`localhost` PROCEDURE `q`(IN n INT)\n"
        "    MODIFIES SQL DATA COMMENT 'a;b'\nBEGIN\n"
        "  DECLARE CONTINUE HANDLER FOR SQLSTATE '23000', NOT FOUND BEGIN SELECT 1; END;\n"
        "  IF n > 0 THEN SELECT CASE WHEN n = 1 THEN 'one' ELSE 'more' END; ELSE CALL other(); END IF;\n"
        "  lbl: LOOP LEAVE lbl; END LOOP lbl;\n  WHILE n > 0 DO SET n = n - 1; END WHILE;\n"
        "  CASE n WHEN 0 THEN SELECT 0; ELSE BEGIN END; END CASE;\n"
        "  PREPARE st FROM @s;\n  EXECUTE st;\nEND ;;\nDELIMITER ;\n",
        "passes",
    ),
    "a function": (
        PROLOGUE + "DELIMITER ;;\nCREATE FUNCTION f(a INT) RETURNS varchar(10) CHARACTER SET utf8mb4\n"
        "    DETERMINISTIC\nBEGIN\n  RETURN IF(a > 0, 'yes', 'no');\nEND ;;\nDELIMITER ;\n",
        "passes",
    ),
    "a trigger as mariadb-dump writes it": (
        PROLOGUE
        + "DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER t1 "
        "AFTER INSERT ON t FOR EACH ROW BEGIN\n  INSERT INTO audit VALUES (NEW.id);\n"
        "  INSERT INTO audit VALUES (1);\nEND */;;\nDELIMITER ;\n",
        "passes",
    ),
    "a routine that names sql_mode": (
        "DELIMITER ;;\nCREATE PROCEDURE q()\nBEGIN\n  SET sql_mode = CONCAT(@@sql_mode, ',ANSI');\nEND ;;\n"
        "DELIMITER ;\n",
        "refused",
    ),
    "data about sql_mode": ("INSERT INTO t VALUES ('SET sql_mode = ANSI; EXECUTE a statement');\n", "passes"),
}


def screen(data: bytes, size: int) -> list[str]:
    found = DumpScreen("test")
    for i in range(0, len(data), size):
        found.feed(data[i : i + size])
    return list(found.close())


def as_screened(text: str) -> bytes:
    return text.replace("{m}", "/tmp/marker").replace("{source}", "/tmp/source.sql").encode()


@pytest.mark.parametrize(("text", "verdict"), list(CASES.values()), ids=list(CASES))
def test_client_commands_are_found_in_chunks_of_any_size(text: str, verdict: str) -> None:
    data = as_screened(text)
    findings = {size: screen(data, size) for size in (len(data), 1, 2, 7)}
    assert all(f == findings[len(data)] for f in findings.values()), findings
    assert bool(findings[len(data)]) == (verdict != "passes"), findings[len(data)]
    if verdict != "passes":
        assert findings[len(data)][0].startswith("line ")


@pytest.fixture(scope="module")
def oracle(mariadb: MariaDB) -> MariaDB:
    mariadb.sql("CREATE DATABASE IF NOT EXISTS screen_oracle;")
    return mariadb


@pytest.mark.parametrize(
    ("text", "verdict"),
    [c for c in CASES.values() if "{m}" in c[0]],
    ids=[k for k, c in CASES.items() if "{m}" in c[0]],
)
def test_the_table_says_what_the_real_client_runs(
    oracle: MariaDB, tmp_path: Path, text: str, verdict: str
) -> None:
    """The real mariadb client, WITHOUT --sandbox (--force: on past errors), in a database of
    its own: the marker appears exactly for the "runs" cases."""
    marker, source = tmp_path / f"marker-{uuid.uuid4().hex}", tmp_path / "source.sql"
    source.write_text(f"\\! touch {marker}\n")
    database = f"oracle_{uuid.uuid4().hex[:8]}"
    oracle.sql(f"CREATE DATABASE {database};")
    try:
        subprocess.run(
            ["mariadb", f"--defaults-extra-file={oracle.root_defaults}", "--batch", "--force", database],
            input=text.replace("{m}", str(marker)).replace("{source}", str(source)).encode(),
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        oracle.sql(f"SET GLOBAL sql_mode = DEFAULT; DROP DATABASE {database};")
    assert marker.exists() == (verdict == "runs")


def test_real_dumps_pass_with_routines_under_any_sql_mode(mariadb: MariaDB) -> None:
    """mariadb-dump's own output: routines made under NO_BACKSLASH_ESCAPES and ANSI, triggers
    and events with blocks, a view, a sequence, data with every quote and backslash."""
    mariadb.sql(
        "CREATE DATABASE IF NOT EXISTS modes; USE modes;\n"
        "CREATE TABLE t (id INT PRIMARY KEY, a TEXT, b BLOB);\n"
        "INSERT INTO t VALUES (1, 'l\\'été \\\\! x\\nsystem y; -- /* `q` \"d\" sql_mode', 0x00275C22);\n"
        "CREATE TABLE audit (id INT);\nCREATE SEQUENCE s;\nCREATE VIEW v AS SELECT a FROM t;\n"
        "DELIMITER //\n"
        "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW BEGIN INSERT INTO audit VALUES (NEW.id);\n"
        "  IF NEW.id > 1 THEN INSERT INTO audit VALUES (0); END IF; END//\n"
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM audit; DELETE FROM audit; END//\n"
        "SET sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI'//\n"
        "CREATE PROCEDURE p() BEGIN SELECT 'a\\', \"a\"; SELECT 1; END//\n"
        "SET sql_mode = 'ORACLE'//\n"
        "CREATE PROCEDURE o AS BEGIN SELECT 'b' FROM DUAL; END//\n"
        "SET sql_mode = DEFAULT//\n"
        "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC\n"
        "  BEGIN DECLARE y INT DEFAULT 1; RETURN x + y; END//\n"
        "DELIMITER ;\n"
    )
    dump = subprocess.run(
        ["mariadb-dump", f"--defaults-extra-file={mariadb.root_defaults}", "--single-transaction",
         "--routines", "--events", "--triggers", "--no-tablespaces", "--hex-blob",
         "--default-character-set=utf8mb4", "--", "modes"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert b"NO_BACKSLASH_ESCAPES" in dump and b"DELIMITER ;;" in dump
    for size in (len(dump), 1, 7, 4096):
        assert screen(dump, size) == [], size


PIECES = [
    "'a\\'b'", "-- c\n", "/* x */", "/*!40101 x */", "1-2", "a*b", "c/d", "\\N", "`q\\`",
    " ", "x", ";", '"s\\"t"', "#h\n", "--x", "\n", "SET sql_mode='ANSI';\n", "DELIMITER ;;\n",
    "DELIMITER ;\n", "\\! t\n", "system t\n", "'", '"', "`", "SET sql_mode='';\n", "/*", "*/",
    "/*!", "--", "SET @saved_sql_mode=@@sql_mode;\n", "SET sql_mode=@saved_sql_mode;\n",
    "CREATE PROCEDURE p() BEGIN SELECT 1; END", "quit\n", "\ufeff", "\r",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.integers(min_value=1, max_value=40))
def test_findings_do_not_depend_on_how_the_dump_is_cut(pieces: list[str], size: int) -> None:
    data = "".join(pieces).encode()
    assert screen(data, size) == screen(data, max(len(data), 1))


def test_very_long_lines_are_screened_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DumpScreen, "PARTIAL", 100)
    data = (
        PROLOGUE + "INSERT INTO t VALUES ('" + "a\\'b -- /* sql_mode" * 200 + "'); \\! touch /x\n"
    ).encode()
    for size in (1, 50, 333, len(data)):
        assert screen(data, size) == ["line 2: client command \\! outside quoted data"], size
    data = (PROLOGUE + "INSERT INTO t VALUES ('" + "a\\'b" * 200 + "');\n").encode()
    for size in (1, 50, 333, len(data)):
        assert screen(data, size) == [], size
    # A DELIMITER after a long comment is no DELIMITER line, whichever part of the line it is in.
    data = ("SET sql_mode='';\n;/* " + "c" * 200 + " */DELIMITER ;;\nSELECT 1;;\n").encode()
    for size in (1, 13, 333, len(data)):
        assert screen(data, size) == ["line 2: a DELIMITER other than mariadb-dump's lines (DELIMITER ;;)"]


def test_the_screen_uses_no_possessive_quantifier() -> None:
    """Debian 12's Python 3.11.2 matches a possessive repeat of alternatives wrongly (it took the
    `-` of every `--` comment line for code, and refused every real dump): atomic groups only."""
    screen = DumpScreen("test")
    patterns = [screen._plain, screen._code_only, *screen._string.values(), *screen._inside.values()]
    patterns += [v for v in vars().values() if isinstance(v, re.Pattern)]
    for pattern in patterns:
        source = pattern.pattern if isinstance(pattern.pattern, bytes) else pattern.pattern.encode()
        assert not re.search(rb"[*+?}]\+", source), source
