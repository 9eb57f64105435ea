"""Text for fpdf2's core fonts, which encode latin-1 only: every string drawn on a PDF goes
through `to_latin1`, so a description with "→" or "–" renders instead of raising.

Core fonts need no font file on any machine or image; the price is that characters outside
latin-1 are spelled with ASCII equivalents ("→" as "->"), then by their decomposition ("ő" as
"o"), and "?" as the last resort: lossy, never a crash."""

from __future__ import annotations

import unicodedata
from types import MappingProxyType

# The characters our descriptions and labels actually use, and their usual cousins.
_SPELLED: MappingProxyType[str, str] = MappingProxyType(
    {
        "→": "->",
        "←": "<-",
        "↔": "<->",
        "⇒": "=>",
        "–": "-",  # en dash
        "—": "-",  # em dash
        "‒": "-",
        "―": "-",
        "−": "-",  # minus sign
        "‐": "-",
        "‑": "-",
        "‘": "'",
        "’": "'",
        "‚": ",",
        "‛": "'",
        "′": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "″": '"',
        "…": "...",
        "•": "*",
        "€": "EUR",
        "™": "(TM)",
        "≤": "<=",
        "≥": ">=",
        "≠": "!=",
        "≈": "~",
        # Latin letters without a decomposition.
        "Ł": "L",
        "ł": "l",
        "Đ": "D",
        "đ": "d",
        "Ħ": "H",
        "ħ": "h",
        "ı": "i",
        "Œ": "OE",
        "œ": "oe",
        "\u2009": " ",  # thin space
        "\u202f": " ",  # narrow no-break space
        "\u200b": "",  # zero-width space
        "\ufeff": "",  # byte-order mark
    }
)


def to_latin1(text: str) -> str:
    """`text` with only characters a core font can draw: latin-1, newlines kept, other control
    characters as spaces."""
    return "".join(_latin1_char(char) for char in text)


def _latin1_char(char: str) -> str:
    if char == "\n":
        return char
    if ord(char) < 0x100:
        return " " if unicodedata.category(char) == "Cc" else char
    spelled = _SPELLED.get(char)
    if spelled is not None:
        return spelled
    decomposed = "".join(
        part
        for part in unicodedata.normalize("NFKD", char)
        if ord(part) < 0x100
        and not unicodedata.combining(part)
        and unicodedata.category(part) != "Cc"
    )
    return decomposed or "?"
