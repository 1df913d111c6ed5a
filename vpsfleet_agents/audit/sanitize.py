"""What a guest sent is hostile: shown, never interpreted. Every byte or character outside
printable ASCII (and the backslash itself) becomes a visible escape, so a report is safe in a
terminal, a pager and a mail, and nothing a guest sends can forge a line of it."""

from __future__ import annotations

LIMIT = 512  # bytes of a transcript kept in a report


def text(value: str, limit: int = LIMIT) -> str:
    """A string (nmap's banner fields) with every non-printable character escaped."""
    out: list[str] = []
    for char in value[:limit]:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif 0x20 <= code <= 0x7E:
            out.append(char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    if len(value) > limit:
        out.append(f"...[{len(value) - limit} more characters]")
    return "".join(out)


def data(raw: bytes, limit: int = LIMIT) -> str:
    """Bytes read from a guest, escaped byte by byte (never decoded as UTF-8)."""
    shown = text(raw[:limit].decode("latin-1"), limit)
    if len(raw) > limit:
        shown += f"...[{len(raw) - limit} more bytes]"
    return shown
