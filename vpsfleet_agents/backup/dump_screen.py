"""Restore: dumps are data, never commands. The screen that reads a dump as the mariadb client
does and notes every client command it would run."""

from __future__ import annotations

import bisect
import re

# What the mariadb client runs itself instead of sending it to the server (its long names; the
# one-letter forms are a backslash and a letter). A dump comes from a guest: loading one must
# never run `\! cmd` / `system cmd`, read (`source`, `\.`) or write (`tee`, `pager`) a file.
CLIENT_COMMANDS = frozenset(
    {
        b"?", b"charset", b"clear", b"connect", b"delimiter", b"edit", b"ego", b"exit", b"go",
        b"help", b"nopager", b"notee", b"nowarning", b"pager", b"print", b"prompt", b"quit",
        b"rehash", b"sandbox", b"source", b"status", b"system", b"tee", b"use", b"warnings",
    }
)  # fmt: skip
# The DELIMITER lines mariadb-dump writes (a whole line; any other DELIMITER is refused).
DUMP_DELIMITER = re.compile(rb"[ \t]*(?i:delimiter)[ \t]+(;;|;)[ \t]*")
# mariadb-dump's first line since 10.11.8: `\-` switches the client to its sandbox mode.
SANDBOX_LINE = re.compile(rb"/\*M!999999\\- enable the sandbox mode \*/[ \t]*")
# The first words of the statements mariadb-dump writes: any other statement is refused (CALL,
# EXECUTE, PREPARE, compound statements, BINLOG... could change the session's SQL mode unseen).
DUMP_STATEMENTS = frozenset(
    {
        b"alter", b"analyze", b"commit", b"create", b"delete", b"do", b"drop", b"flush",
        b"insert", b"lock", b"optimize", b"rename", b"replace", b"rollback", b"select", b"set",
        b"start", b"truncate", b"unlock", b"update",
    }
)  # fmt: skip
# MariaDB's SQL modes; those that change how the client reads quoted data: NO_BACKSLASH_ESCAPES
# (no escape in '...' and "..."), ANSI_QUOTES (no escape in "..." for clients since 10.11).
SQL_MODES = frozenset(
    {
        b"allow_invalid_dates", b"ansi", b"ansi_quotes", b"db2", b"empty_string_is_null",
        b"error_for_division_by_zero", b"high_not_precedence", b"ignore_bad_table_options",
        b"ignore_space", b"maxdb", b"mssql", b"mysql323", b"mysql40", b"no_auto_create_user",
        b"no_auto_value_on_zero", b"no_backslash_escapes", b"no_dir_in_create",
        b"no_engine_substitution", b"no_field_options", b"no_key_options", b"no_table_options",
        b"no_unsigned_subtraction", b"no_zero_date", b"no_zero_in_date", b"only_full_group_by",
        b"oracle", b"pad_char_to_full_length", b"pipes_as_concat", b"postgresql", b"real_as_float",
        b"simultaneous_assignment", b"strict_all_tables", b"strict_trans_tables",
        b"time_round_fractional", b"traditional",
    }
)  # fmt: skip
ANSI_QUOTES_MODES = frozenset({b"ansi_quotes", b"ansi", b"db2", b"maxdb", b"mssql", b"oracle", b"postgresql"})
# A line read word by word: it may name sql_mode, or a user variable by a quoted name.
_CAREFUL_LINE = re.compile(rb"(?i:sql_mode)|@[ \t]*['\"`]")
_QUOTED_VARIABLE = re.compile(rb"@[ \t]*['\"`]")


def _careful_spots(buf: bytes) -> list[int]:
    """Where the lines to read word by word are (_CAREFUL_LINE, found faster), in order."""
    low, spots = buf.lower(), [hit.start() for hit in _QUOTED_VARIABLE.finditer(buf)]
    at = low.find(b"sql_mode")
    while at >= 0:
        spots.append(at)
        at = low.find(b"sql_mode", at + 1)
    return sorted(spots)


_BLANK = b" \t\r\f\v"
_AT = ord("@")
_COMMAND_WORD = re.compile(rb"([A-Za-z]+|\?)")
_WORD_BYTE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$")
_VERSION = re.compile(rb"/\*(M?)!([0-9]*)")
_FIRST_VERSION = re.compile(rb"\s*/\*(M?)!([0-9]*)")
_HEAD = re.compile(rb"(?>(?:\s|/\*M?![0-9]*|\*/)*)(?:([A-Za-z_][A-Za-z0-9_$]*)|(\S))")
_BLANKS = re.compile(rb"[ \t\r\f\v]*")
_ML_STOP = re.compile(rb"/\*|\*/")
_MODE_LIST = re.compile(rb"[A-Za-z_,]*")
Modes = tuple[bool | None, bool | None]  # NO_BACKSLASH_ESCAPES, ANSI_QUOTES; None: not known


def _escapes(quote: int, modes: Modes) -> bool | None:
    """Whether the client reads a backslash in this quoted data as an escape (None: it depends
    on a SQL mode the screen does not know, or on the client's version)."""
    nbe, ansi = modes
    if quote == ord("`") or nbe is True:
        return False
    if nbe is None:
        return None
    if quote == ord("'"):
        return True
    return True if ansi is False else None  # ANSI_QUOTES: clients before 10.11 still escape


# Atomic groups, never possessive quantifiers: Python 3.11.2 (Debian 12's) matches a possessive
# repeat of alternatives wrongly (`(?:a|-(?=[^-]))*+` takes the `-` of `--`), fixed in 3.11.5.


def _quoted(quote: int, escapes: bool | None) -> bytes:
    """A complete quoted string, as the client reads it."""
    q = re.escape(bytes([quote]))
    if escapes:
        return q + rb"(?>(?:(?>[^\\" + q + rb"]+)|\\.)*)" + q
    if escapes is None:
        return q + rb"(?>[^\\" + q + rb"]*)" + q
    return q + rb"(?>[^" + q + rb"]*)" + q


def _inside(quote: int, escapes: bool | None) -> re.Pattern[bytes]:
    """Inside a quoted string: up to its closing quote (or to a backslash, when it is unknown
    whether it escapes)."""
    q = re.escape(bytes([quote]))
    if escapes:
        return re.compile(rb"(?>(?:(?>[^\\" + q + rb"]+)|\\.)*)", re.DOTALL)
    if escapes is None:
        return re.compile(rb"(?>[^\\" + q + rb"]*)")
    return re.compile(rb"(?>[^" + q + rb"]*)")


def _version_certain(marker: re.Match[bytes]) -> bool:
    """An executable comment that every server this loads into (MariaDB 10.5 and later) runs."""
    digits = marker[2]
    if not marker[1]:
        return len(digits) in (0, 5)
    return len(digits) in (5, 6) and int(digits) <= 100500


class _Tokens:
    """A statement as the server reads it: quoted strings ("s", as written), words lowercased
    ("w"), the markers of executable comments ("open" when every server runs it, "uncertain",
    "close"), other bytes ("p")."""

    def __init__(self, text: bytes, modes: Modes) -> None:
        strings = b"|".join(_quoted(q, bool(_escapes(q, modes) is not False)) for q in b"'\"`")
        pattern = re.compile(
            rb"(?P<blank>\s+)|(?P<str>" + strings + rb")|(?P<open>/\*M?![0-9]*)|(?P<close>\*/)"
            rb"|(?P<word>[A-Za-z0-9_$\x80-\xff]+)|(?P<assign>:=)|(?P<at>@@?)|(?P<other>.)",
            re.DOTALL,
        )
        self.items: list[tuple[str, bytes]] = []
        for token in pattern.finditer(text):
            kind = token.lastgroup or "other"
            value = token[0]
            if kind == "blank":
                continue
            if kind == "str":
                self.items.append(("s", value))
            elif kind == "word":
                self.items.append(("w", value.lower()))
            elif kind == "open":
                marker = _VERSION.match(value)
                assert marker is not None
                self.items.append(("open" if _version_certain(marker) else "uncertain", value))
            else:
                self.items.append((kind if kind == "close" else "p", value))

    def code(self) -> list[tuple[str, bytes]]:
        """Without the markers of executable comments."""
        return [t for t in self.items if t[0] not in ("open", "uncertain", "close")]


def _word(items: list[tuple[str, bytes]], i: int) -> bytes | None:
    return items[i][1] if i < len(items) and items[i][0] == "w" else None


def _is(items: list[tuple[str, bytes]], i: int, value: bytes) -> bool:
    return i < len(items) and items[i][1] == value and items[i][0] in ("p", "at", "assign")


_OPENERS = frozenset({b"if", b"case", b"while", b"for", b"loop", b"repeat"})
_BLOCKS = _OPENERS | {b"begin"}
# After these words a statement begins, inside the block on top (not after THEN in CASE ... END).
_STATEMENT_NEXT = frozenset(
    {
        (b"then", b"if"),
        (b"else", b"if"),
        (b"then", b"case"),
        (b"else", b"case"),
        (b"do", b"while"),
        (b"do", b"for"),
    }
)
_CHARACTERISTICS = (
    (b"language", b"sql"), (b"not", b"deterministic"), (b"deterministic",), (b"contains", b"sql"),
    (b"no", b"sql"), (b"reads", b"sql", b"data"), (b"modifies", b"sql", b"data"),
    (b"sql", b"security", b"definer"), (b"sql", b"security", b"invoker"),
    (b"as",), (b"is",),  # sql_mode=ORACLE: `PROCEDURE p() AS BEGIN ... END`
)  # fmt: skip
_BODY_FIRST = frozenset(
    {b"begin", b"return", b"if", b"case", b"loop", b"while", b"repeat", b"for", b"select", b"set",
     b"insert", b"update", b"delete", b"replace", b"call", b"do", b"declare", b"signal"}
)  # fmt: skip


def _routine_body(items: list[tuple[str, bytes]]) -> int | None:
    """Where the body of `CREATE [OR REPLACE] [DEFINER=...] PROCEDURE|FUNCTION|TRIGGER|EVENT`
    begins (None: not such a statement)."""
    i = 1
    if _word(items, i) == b"or" and _word(items, i + 1) == b"replace":
        i += 2
    if _word(items, i) == b"definer":
        i += 2  # DEFINER =
        if _word(items, i) == b"current_user" and _is(items, i + 1, b"("):
            i += 2
        i += 1
        if _is(items, i, b"@"):
            i += 2
    if _word(items, i) == b"aggregate":
        i += 1
    kind = _word(items, i)
    i += 1
    if _word(items, i) == b"if" and _word(items, i + 1) == b"not" and _word(items, i + 2) == b"exists":
        i += 3
    i += 1  # the name
    if _is(items, i, b"."):
        i += 2
    if kind in (b"procedure", b"function"):
        if not _is(items, i, b"("):
            return None
        depth = 0
        while i < len(items):
            depth += _is(items, i, b"(") - _is(items, i, b")")
            i += 1
            if depth == 0:
                break
        if kind == b"function":
            if _word(items, i) != b"returns":
                return None
            i += 1
            while i < len(items):  # the type, up to a characteristic or the body
                word = _word(items, i)
                if word == b"character" and _word(items, i + 1) == b"set":
                    i += 2
                    continue
                if _is(items, i + 1, b":") or (word in _BODY_FIRST and not _is(items, i + 1, b"(")):
                    break
                if word == b"comment" or any(word == c[0] for c in _CHARACTERISTICS):
                    break
                i += 1
        while i < len(items):
            if _word(items, i) == b"comment":
                i += 2
                continue
            for words in _CHARACTERISTICS:
                if all(_word(items, i + k) == w for k, w in enumerate(words)):
                    i += len(words)
                    break
            else:
                break
        return i
    if kind == b"trigger":
        for j in range(i, len(items) - 2):
            if [_word(items, j + k) for k in range(3)] == [b"for", b"each", b"row"]:
                j += 3
                return j + 2 if _word(items, j) in (b"follows", b"precedes") else j
        return None
    if kind == b"event":
        for j in range(i, len(items)):
            if _word(items, j) == b"do":
                return j + 1
    return None


def _body_holds_every_semicolon(items: list[tuple[str, bytes]], i: int) -> bool:
    """Whether a routine's body, from items[i], goes on to the end of the statement: a `;`
    after it would start a statement of its own (the client enables multi-statements). Blocks
    are opened only where a statement starts, so that this never reads a body longer than the
    server does (a block it misses only makes it refuse)."""
    stack: list[bytes] = []
    start, handler = True, -1
    n = len(items)
    while i < n:
        word = _word(items, i)
        if i == handler:
            start = True
        if start:
            if items[i][0] in ("w", "s") and _is(items, i + 1, b":") and _word(items, i + 2) in _BLOCKS:
                i += 2
                continue
            if word == b"begin":
                stack.append(word)
                i += 1
                if _word(items, i) == b"not" and _word(items, i + 1) == b"atomic":
                    i += 2
                continue
            if word in _OPENERS:
                stack.append(word)
                start = word in (b"loop", b"repeat")
                i += 1
                continue
            start = False
            if word == b"declare":
                handler = _handler_statement(items, i)
        if _is(items, i, b";"):
            if not stack:
                return False
            start = True
        elif word == b"case":
            stack.append(b"case-expression")
        elif word == b"end":
            closes = _word(items, i + 1)
            if closes in _OPENERS:
                if not stack or stack[-1] != closes:
                    return False
                i += 1
            elif not stack or stack[-1] not in (b"begin", b"case-expression"):
                return False
            stack.pop()
            if not stack:
                rest = items[i + 1 :]
                return not rest or (len(rest) == 1 and rest[0][0] in ("w", "s"))  # a label
        elif stack and (word, stack[-1]) in _STATEMENT_NEXT:
            start = True
        i += 1
    return False


def _handler_statement(items: list[tuple[str, bytes]], i: int) -> int:
    """For `DECLARE ... HANDLER FOR conditions statement`: where its statement begins (-1)."""
    j = i
    while j < len(items) and not _is(items, j, b";"):
        if _word(items, j) == b"handler" and _word(items, j + 1) == b"for":
            j += 2
            while j < len(items):
                if _word(items, j) == b"sqlstate":
                    j += 3 if _word(items, j + 1) == b"value" else 2
                elif _word(items, j) == b"not" and _word(items, j + 1) == b"found":
                    j += 2
                else:
                    j += 1
                if not _is(items, j, b","):
                    return j
                j += 1
        j += 1
    return -1


class DumpScreen:
    """Reads a dump as the mariadb client does (its rules for quotes, `--`, `#` and `/* */`
    comments, `/*!` comments that run, the delimiter, the SQL modes the server reports) and
    notes every client command it would run: a backslash command outside quoted data, a command
    word first in a statement (`system`, `source`, `quit`, `use`... mid-line too), a DELIMITER
    line other than mariadb-dump's `;;` and `;`. So that its reading of quoted data never
    differs from the client's, it follows the SQL mode only through SET statements it reads
    exactly, and refuses what could change it otherwise: a statement mariadb-dump never writes
    (CALL, EXECUTE, PREPARE, compound statements...), sql_mode named anywhere else (a trigger,
    a routine), a routine followed by more statements, a backslash in quoted data while the
    mode is not known (as before the dump sets it). Belt and braces: dumps are loaded with
    `--sandbox --binary-mode` anyway. Streaming (chunks of any size), linear time; lines longer
    than PARTIAL are read in parts. Functions already on the server the dump loads into are not
    read: they could change the mode (the sandbox still holds)."""

    PARTIAL = 4 << 20  # a line longer than this is screened before its end is read
    TEXT = 1 << 20  # the most of one statement kept to read it word by word

    def __init__(self, name: str) -> None:
        self.name = name
        self.line = 0
        self.findings: list[str] = []
        self._carry = b""
        self._in_line = False  # part of the line already read (a long line read in parts)
        self._before = b""  # the last bytes of that part
        self._hits: list[int] = []
        self._nul = False
        self._quote: int | None = None
        self._counted = False  # the open quoted data is a name: sql_mode in it counts
        self._name_seen = b""
        self._ml = False  # in /* ... */, which the client skips
        self._ss = False  # the client's own flag for /*! on this line (it changes where */ ends)
        self._skip = False  # the rest of the line is a comment
        self._line_at = 0  # where the line begins in the buffer, -1 in an earlier part (DELIMITER lines)
        self._line_clean = True  # the line began with no statement, quote or comment open
        self._careful = False
        self._delimiter = b";"
        self._modes: Modes = (None, None)  # the session's SQL mode is the server's default
        self._saved: dict[bytes, Modes] = {}  # @saved_sql_mode = @@sql_mode
        self._compile()
        self._new_statement()

    def _new_statement(self) -> None:
        self._empty = True  # the client holds nothing of a statement
        self._text = bytearray()  # the statement as the server gets it (comments left out)
        self._keep = True
        self._long = False
        self._head: bytes | None = None
        self._mention = False  # sql_mode named outside quoted data
        self._semicolon = False  # a `;` inside (delimiter ;;): more than one statement
        self._last = 0  # the last byte of code read
        self._tail = b""

    def _compile(self) -> None:
        strings = b"|".join(_quoted(q, _escapes(q, self._modes)) for q in b"'\"`")
        self._plain = re.compile(
            rb"(?>(?:(?>[^'\"`\\/*#\-;]+)|" + strings + rb"|-(?=[^-])|/(?=[^*])|\*(?=[^/]))*)", re.DOTALL
        )
        self._code_only = re.compile(rb"(?>(?:(?>[^'\"`\\/*#\-;@]+)|-(?=[^-])|/(?=[^*])|\*(?=[^/]))*)")
        self._string = {q: re.compile(_quoted(q, _escapes(q, self._modes)), re.DOTALL) for q in b"'\"`"}
        self._inside = {q: _inside(q, _escapes(q, self._modes)) for q in b"'\"`"}

    def _found(self, what: str) -> None:
        if len(self.findings) < 5:
            self.findings.append(f"line {self.line + 1}: {what}")

    def feed(self, data: bytes) -> None:
        buf = self._carry + data if self._carry else data
        self._hits = _careful_spots(buf)
        pos = 0
        while True:
            newline = buf.find(b"\n", pos)
            if newline < 0:
                break
            self._read(buf, pos, newline, newline, True)
            pos = newline + 1
        if len(buf) - pos > self.PARTIAL:
            pos = self._read(buf, pos, len(buf) - 64, len(buf), False)
        self._carry = buf[pos:]

    def close(self) -> list[str]:
        if self._carry:
            self.feed(b"\n")
            self._carry = b""
        if not self._empty:  # batch mode: the client sends the last statement at the end
            self._statement_end()
        return self.findings

    # --- one line, as the client's add_line() reads it

    def _read(self, buf: bytes, pos: int, end: int, limit: int, final: bool) -> int:
        """Screens the line (or the first part of a long line) in buf[pos:end]; a token may run
        on to `limit`. Returns where to go on from."""
        if not self._in_line:
            self._in_line = True
            self._ss = self._skip = False
            self._before = b""
            if self.line == 0 and buf.startswith(b"\xef\xbb\xbf", pos):
                pos += 3  # the client skips a byte-order mark
            if self.line == 0 and final and SANDBOX_LINE.fullmatch(buf, pos, end):
                self._empty = False  # the client keeps it; the server ignores it
                return self._line_end(end)
            self._line_at = pos
            self._line_clean = self._empty and not self._ml and self._quote is None
            if self._quote is None and self._empty:
                self._last = 0
        if not self._nul and buf.find(b"\x00", pos, limit) >= 0:
            self._nul = True
            self._found("a NUL byte (mariadb-dump never writes one)")
        start = pos
        hit = bisect.bisect_left(self._hits, pos)
        self._careful = (
            (hit < len(self._hits) and self._hits[hit] < limit)
            or self._last == _AT
            or (self._before != b"" and _CAREFUL_LINE.search(self._before + buf[pos : pos + 16]) is not None)
        )
        while pos < end and not self._skip:
            if self._quote is not None:
                pos = self._in_quote(buf, pos, limit, final)
            elif self._ml:
                pos = self._in_comment(buf, pos, limit, final)
            else:
                pos = self._in_code(buf, pos, end, limit, final)
            if pos < 0:
                pos = -pos - 1
                break
        if final:
            return self._line_end(end)
        if self._skip:
            pos = max(pos, end)
        self._before = (self._before + buf[start:pos])[-16:]  # what the next part goes on from
        self._line_at = -1  # the next part is not the line's beginning
        return pos

    def _line_end(self, end: int) -> int:
        if not self._empty and self._keep:
            self._add(b"\n")
        self._tail = b""
        self._in_line = False
        self.line += 1
        return end

    def _add(self, code: bytes) -> None:
        """Code the client adds to the statement."""
        if not self._keep:
            return
        if len(self._text) + len(code) > self.TEXT:
            self._keep, self._long = False, True
            return
        self._text += code
        if self._head is None and len(self._text) > 4096:
            self._head = b"?"  # no first word in 4 KiB: not a statement mariadb-dump writes
        if self._head is None:
            head = _HEAD.match(self._text)
            if head is not None and head.end() + 16 < len(self._text):  # not a marker cut short
                self._head = (head[1] or head[2]).lower()
                if self._head not in (b"set", b"create") and not self._uncertain_start():
                    self._keep = False

    def _uncertain_start(self) -> bool:
        """The statement begins with a version comment some server could skip."""
        first = _FIRST_VERSION.match(self._text)
        return first is not None and not _version_certain(first)

    def _mentions(self, text: bytes) -> None:
        seen = (self._tail + text).lower()
        if b"sql_mode" in seen:
            self._mention = True
        self._tail = seen[-8:]

    def _in_code(self, buf: bytes, pos: int, end: int, limit: int, final: bool) -> int:
        if self._empty:
            pos = _BLANKS.match(buf, pos, end).end()  # type: ignore[union-attr]
            if pos >= end:
                return pos
        if not self._careful:
            run = self._plain.match(buf, pos, end)
            if run is not None and run.end() > pos:
                if self._empty:
                    stop = self._begin(buf, pos, limit, final)
                    if stop is not None:
                        return stop
                self._add(run[0])
                self._last = buf[run.end() - 1]
                return run.end()
        elif (run := self._code_only.match(buf, pos, end)) is not None and run.end() > pos:
            if self._empty:
                stop = self._begin(buf, pos, limit, final)
                if stop is not None:
                    return stop
            self._add(run[0])
            self._mentions(run[0])
            code = run[0].rstrip(_BLANK)
            if code:
                self._last = code[-1]
            return run.end()
        return self._token(buf, pos, limit, final)

    def _begin(self, buf: bytes, pos: int, limit: int, final: bool) -> int | None:
        """The first code of a statement: a client command word there takes the statement (the
        client checks the line when it holds nothing, and the statement at its delimiter)."""
        word = _COMMAND_WORD.match(buf, pos, limit)
        if word is None:
            self._empty = False
            return None
        after = word.end()
        if after >= limit and not final:
            return -pos - 1  # wait for the rest of the word
        if after < limit and buf[after] in _WORD_BYTE:
            self._empty = False
            return None
        name = word[0].lower()
        if name not in CLIENT_COMMANDS:
            self._empty = False
            return None
        line_start = self._line_at >= 0 and not buf[self._line_at : pos].strip(_BLANK)
        if name == b"delimiter" and final and self._line_clean and line_start:
            line = DUMP_DELIMITER.fullmatch(buf, pos, limit)
            if line is not None:
                self._delimiter = line[1]
                self._skip = True
                return limit
        shown = buf[pos:limit][:60].decode(errors="replace").strip()
        if name == b"delimiter":
            self._found(f"a DELIMITER other than mariadb-dump's lines ({shown})")
        else:
            self._found(f"client command {name.decode()!r} ({shown})")
        self._empty = False
        self._skip = True  # the client takes the rest of the line as the command's argument
        return limit

    def _token(self, buf: bytes, pos: int, limit: int, final: bool) -> int:
        byte = buf[pos]
        ahead = buf[pos + 1 : min(pos + 4, limit)]
        if not final and pos + 16 > limit:
            return -pos - 1  # a token may go on in what is not read yet
        if byte == ord("\\"):
            if not ahead:
                return limit  # a backslash ending the line: the client drops it
            if ahead[0] != ord("N"):
                self._found(f"client command \\{chr(ahead[0])} outside quoted data")
                self._skip = True  # most take the rest of the line as their argument
                return limit
            self._empty = False
            self._add(buf[pos : pos + 2])
            return pos + 2
        if buf.startswith(self._delimiter, pos, limit):
            self._statement_end()
            return pos + len(self._delimiter)
        if byte == ord(";"):  # delimiter ;; and a single `;`: the server splits there
            self._semicolon = True
        elif byte == ord("#") or (byte == ord("-") and ahead[:1] == b"-" and self._dashes_comment(ahead)):
            self._skip = True
            return limit
        elif byte == ord("/") and ahead[:1] == b"*" and not (ahead[1:2] == b"!" or ahead[1:3] == b"M!"):
            self._ml = True
            return pos + 2
        elif byte == ord("/") and ahead[:2] == b"*!":
            self._ss = True
        elif byte == ord("*") and ahead[:1] == b"/":
            self._ss = False
        elif byte in b"'\"`":
            return self._open_quote(buf, pos, limit, final)
        if self._empty:
            stop = self._begin(buf, pos, limit, final)
            if stop is not None:
                return stop
        self._add(buf[pos : pos + 1])
        if self._careful:
            self._mentions(buf[pos : pos + 1])
        if byte not in _BLANK:
            self._last = byte
        return pos + 1

    def _dashes_comment(self, ahead: bytes) -> bool:
        """`--` begins a comment first in a statement, or before a blank or the end of the line."""
        return self._empty or len(ahead) < 2 or ahead[1] in _BLANK

    def _open_quote(self, buf: bytes, pos: int, limit: int, final: bool) -> int:
        quote = buf[pos]
        if self._empty:
            self._empty = False
        # A name (sql_mode in it counts): `identifier`, "identifier" (ANSI_QUOTES), @'variable'.
        self._counted = quote != ord("'") or self._last == _AT
        self._name_seen = b""
        whole = self._string[quote].match(buf, pos, limit)
        if whole is not None:
            self._add(whole[0])
            if self._counted:
                self._name(whole[0][1:-1])
            self._last = quote
            return whole.end()
        self._quote = quote
        self._add(buf[pos : pos + 1])
        return pos + 1

    def _name(self, text: bytes) -> None:
        """Part of a quoted name: sql_mode in it counts, whatever backslashes hide it."""
        seen = self._name_seen + text.replace(b"\\", b"").lower()
        if b"sql_mode" in seen:
            self._mention = True
        self._name_seen = seen[-8:]

    def _in_quote(self, buf: bytes, pos: int, limit: int, final: bool) -> int:
        assert self._quote is not None
        inside = self._inside[self._quote].match(buf, pos, limit)
        assert inside is not None
        stop = inside.end()
        self._add(buf[pos:stop])
        if self._counted:
            self._name(buf[pos:stop])
        if stop >= limit:
            return stop
        if buf[stop] == self._quote:
            self._add(buf[stop : stop + 1])
            self._quote = None
            self._last = buf[stop]
            return stop + 1
        # A backslash: at the end of what is read, or one that may or may not escape.
        if stop + 1 >= limit:
            return stop + 1 if final else -stop - 1
        if _escapes(self._quote, self._modes) is None:
            self._found("a backslash in quoted data while the SQL mode is not known")
        self._add(buf[stop : stop + 2])
        if self._counted:
            self._name(buf[stop : stop + 2])
        return stop + 2

    def _in_comment(self, buf: bytes, pos: int, limit: int, final: bool) -> int:
        """Inside /* ... */: the client ends it at a `*/` that does not follow a `/*!` of the
        same line (it then ends the `/*!` instead)."""
        while True:
            stop = _ML_STOP.search(buf, pos, limit)
            if stop is None:
                return limit if final or not buf[pos:limit].endswith((b"/", b"*")) else -(limit - 1) - 1
            at = stop.start()
            if buf[at] == ord("/"):
                if not final and at + 4 > limit:
                    return -at - 1
                after = buf[at + 2 : min(at + 4, limit)]
                if after[:1] == b"!":
                    self._ss = True
                    pos = at + 1
                elif after == b"M!":
                    pos = at + 1
                else:
                    pos = at + 2
            elif self._ss:
                self._ss = False
                pos = at + 1
            else:
                self._ml = False
                self._add(b" ")
                return at + 2

    # --- one statement, as the server reads it

    def _statement_end(self) -> None:
        if not self._empty:
            self._statement()
        self._new_statement()

    def _statement(self) -> None:
        text = bytes(self._text)
        head = _HEAD.match(text)
        first = (head[1] or head[2]).lower() if head is not None else None
        if first is None:
            return
        tokens = _Tokens(text, self._modes) if self._keep else None
        heads = {first}
        if tokens is not None and tokens.items and tokens.items[0][0] == "uncertain":
            rest = tokens.items[1:]
            close = next((k for k, t in enumerate(rest) if t[0] == "close"), len(rest))
            after = [t for t in rest[close + 1 :] if t[0] not in ("open", "uncertain", "close")]
            if after:
                heads.add(after[0][1] if after[0][0] == "w" else b"?")
        elif self._long and self._uncertain_start():
            self._found("a statement too long to read that begins with a version comment")
        for word in sorted(heads):
            if word not in DUMP_STATEMENTS:
                shown = word.decode(errors="replace")[:30]
                self._found(f"a statement mariadb-dump does not write ({shown.upper()}...)")
        if self._mention and first != b"set":
            self._found("sql_mode named outside a SET statement (a routine could change it unseen)")
        if self._semicolon:
            if first != b"create":
                self._found("several statements sent as one (a `;` inside, the delimiter being ;;)")
            elif tokens is None:
                self._found("a routine too long to read whole")
            else:
                items = [t for t in tokens.items if t[0] not in ("open", "close")]
                body = _routine_body(items) if not any(t[0] == "uncertain" for t in items) else None
                if body is None or not _body_holds_every_semicolon(items, body):
                    self._found("more statements after a routine's body (the server runs them too)")
        if first == b"set":
            if tokens is None:
                if self._mention:
                    self._found("a SET statement too long to read")
            else:
                self._set(tokens)

    def _set(self, tokens: _Tokens) -> None:
        """SET STATEMENT is refused; a SET that names sql_mode is followed exactly (the forms
        mariadb-dump writes) or refused."""
        if _word(tokens.code(), 1) == b"statement":
            self._found("SET STATEMENT (it runs another statement, with its own sql_mode)")
        elif self._mention:
            problem = self._follow_set(tokens.items)
            if problem:
                self._found(problem)

    def _follow_set(self, items: list[tuple[str, bytes]]) -> str | None:
        if items[0][0] == "open" and items[-1][0] == "close" and not items[0][1].startswith(b"/*M"):
            items = items[1:-1]  # /*!40101 SET ... */
        if any(t[0] in ("open", "uncertain", "close") for t in items):
            return "sql_mode set in a version comment the screen cannot be sure the server runs"
        modes, saves, i = self._modes, dict(self._saved), 1
        while True:
            target, i = _set_target(items, i)
            if target is None or not (_is(items, i, b"=") or _is(items, i, b":=")):
                return "sql_mode in a SET statement the screen cannot read exactly"
            value, i = _set_value(items, i + 1)
            if value is None or not (i == len(items) or _is(items, i, b",")):
                return "sql_mode set from an expression the screen cannot follow"
            scope, name = target
            if scope == b"@":  # a user variable: a copy of sql_mode, or nothing to do with it
                if b"sql_mode" in name:
                    if value != (b"@@", b"sql_mode") or modes != self._modes:
                        return "a copy of sql_mode made otherwise than from @@sql_mode"
                    saves[name] = modes
                elif value[0] in (b"@@", b"@@global"):
                    return "a SET naming sql_mode that reads another variable too"
            elif name != b"sql_mode":
                return "other variables set together with sql_mode"
            elif scope == b"global":
                return "SET GLOBAL sql_mode"
            else:
                new = _set_modes(value, modes, saves)
                if new is None:
                    return "sql_mode set to a value the screen cannot follow"
                modes = new
            if i == len(items):
                break
            i += 1
        self._saved = saves
        if modes != self._modes:
            self._modes = modes
            self._compile()
        return None


def _set_target(items: list[tuple[str, bytes]], i: int) -> tuple[tuple[bytes, bytes] | None, int]:
    """A SET target: (b"@", user variable) or (scope, system variable)."""
    if _is(items, i, b"@"):
        name = _word(items, i + 1)
        return ((b"@", name) if name is not None else None), i + 2
    scope = b"session"
    if _is(items, i, b"@@"):
        i += 1
        if _word(items, i) in (b"session", b"local", b"global") and _is(items, i + 1, b"."):
            scope = _word(items, i)  # type: ignore[assignment]
            i += 2
    elif _word(items, i) in (b"session", b"local", b"global") and _word(items, i + 1) is not None:
        scope = _word(items, i)  # type: ignore[assignment]
        i += 1
    name = _word(items, i)
    return ((b"global" if scope == b"global" else b"session", name) if name is not None else None), i + 1


def _set_value(items: list[tuple[str, bytes]], i: int) -> tuple[tuple[bytes, bytes] | None, int]:
    """A SET value the screen follows: ("s", quoted), ("w", word), ("@", user variable),
    ("@@", session system variable), ("@@global", ...)."""
    if i < len(items) and items[i][0] == "s":
        return (b"s", items[i][1]), i + 1
    if _word(items, i) is not None:
        return (b"w", items[i][1]), i + 1
    if _is(items, i, b"@"):
        name = _word(items, i + 1)
        return ((b"@", name) if name is not None else None), i + 2
    if _is(items, i, b"@@"):
        target, j = _set_target(items, i)
        if target is None:
            return None, j
        return ((b"@@global" if target[0] == b"global" else b"@@", target[1])), j
    return None, i


def _set_modes(value: tuple[bytes, bytes], modes: Modes, saves: dict[bytes, Modes]) -> Modes | None:
    """The SQL modes after `SET sql_mode = value` (None: the screen cannot follow it)."""
    kind, text = value
    if kind == b"@@":
        return modes if text == b"sql_mode" else None
    if kind == b"@@global":
        return (None, None) if text == b"sql_mode" else None
    if kind == b"@":
        return saves.get(text, (None, None))  # a variable it did not see saved: not known
    if kind == b"w" and text == b"default":
        return (None, None)  # the server's default: not known
    if kind == b"s":
        text = text[1:-1]
    if not _MODE_LIST.fullmatch(text):
        return None
    names = {name.lower() for name in text.split(b",") if name}
    if names - SQL_MODES:
        return None
    return (b"no_backslash_escapes" in names, bool(names & ANSI_QUOTES_MODES))
