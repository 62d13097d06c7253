"""Seeing through disguises before judging: the text a reader sees, not the bytes a filter sees.

`view(text)` returns two readings of a message with a map back to the original characters, so every span a
validator reports still points into the text the person wrote:

- `clean`: Unicode NFKC (full-width and styled letters become plain ones), look-alike letters from other
  scripts folded to Latin (`Cyrillic а` reads `a`), and invisible characters removed;
- `plain`: `clean` with spaced or punctuated letters joined (`p.r.o.f.i.t`, `r i s k - f r e e`) and the
  usual digit and symbol stand-ins read as letters inside words (`n0 r1sk`, `guar@nteed`).

What was hidden is reported too: direction overrides and terminal escape sequences (which can make a reader
see something else than what is there) and other control characters, and zero-width characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# Letters of other scripts that look like Latin ones (the usual homoglyphs of phishing and filter evasion).
CONFUSABLES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "һ": "h",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y",
    "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W",
    # Greek
    "α": "a", "ο": "o", "ρ": "p", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "τ": "t", "υ": "u", "χ": "x", "γ": "y",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin look-alikes and punctuation that reads as letters or plain punctuation
    "ı": "i", "ɡ": "g", "ɑ": "a", "ℓ": "l", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-",
    "‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "\u00a0": " ", "\u2009": " ", "\u202f": " ",
})
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# Stand-ins read as letters, only inside a word that also has letters ("n0", "r1sk", not "40%" or "2026").
LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"}
LEET_WORD = re.compile(r"(?<![\w@$!|])(?=[\w@$!|]*[a-zA-Z])(?=[\w@$!|]*[013457@$!|])[\w@$!|]{2,}")
# Three or more single letters with one separator between them: "p.r.o.f.i.t", "r i s k", "f-r-e-e".
SPACED = re.compile(r"(?<![\w])(?:[A-Za-z](?:[ .\-_*·•/]| [-/] )){2,}[A-Za-z](?![\w])")


@dataclass(frozen=True)
class Hidden:
    start: int
    end: int
    kind: str  # bidi | escape | control | zero_width | lookalike


@dataclass
class Reading:
    """A reading of the text and, for each of its characters, the index of the original character."""

    text: str
    origin: list[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Where [start, end) of this reading lies in the text it was read from."""
        if not self.origin:
            return (0, 0)
        start = min(max(start, 0), len(self.origin) - 1)
        last = min(max(end - 1, start), len(self.origin) - 1)
        return self.origin[start], self.origin[last] + 1


@dataclass
class View:
    original: str
    clean: Reading
    plain: Reading
    hidden: list[Hidden] = field(default_factory=list)


def _fold(text: str) -> tuple[Reading, list[Hidden]]:
    out: list[str] = []
    origin: list[int] = []
    hidden: list[Hidden] = []
    escapes = {m.start(): m.end() for m in ANSI.finditer(text)}
    i = 0
    while i < len(text):
        if i in escapes:
            hidden.append(Hidden(i, escapes[i], "escape"))
            i = escapes[i]
            continue
        ch = text[i]
        if ch in BIDI:
            hidden.append(Hidden(i, i + 1, "bidi"))
        elif ch in ZERO_WIDTH:
            # A zero-width joiner between emoji is how emoji are written; anywhere else it hides something.
            joined_emoji = ch == "\u200d" and 0 < i < len(text) - 1 and not text[i - 1].isalnum() \
                and not text[i + 1].isalnum()
            if not joined_emoji:
                hidden.append(Hidden(i, i + 1, "zero_width"))
        elif unicodedata.category(ch) == "Cc" and ch not in "\n\r\t":
            hidden.append(Hidden(i, i + 1, "control"))
        else:
            folded = unicodedata.normalize("NFKC", ch).translate(CONFUSABLES)
            if folded != ch and ch.isalpha() and folded.isascii() and not ch.isascii() \
                    and unicodedata.normalize("NFKC", ch) == ch:
                hidden.append(Hidden(i, i + 1, "lookalike"))  # a letter of another script posing as Latin
            for piece in folded:
                out.append(piece)
                origin.append(i)
        i += 1
    return Reading("".join(out), origin), hidden


def _rewrite(reading: Reading, pattern: re.Pattern[str], replace) -> Reading:  # noqa: ANN001 - a callable
    out: list[str] = []
    origin: list[int] = []
    at = 0
    for match in pattern.finditer(reading.text):
        out.append(reading.text[at:match.start()])
        origin.extend(reading.origin[at:match.start()])
        positions = list(range(match.start(), match.end()))
        for ch, pos in replace(match.group(), positions):
            out.append(ch)
            origin.append(reading.origin[pos])
        at = match.end()
    out.append(reading.text[at:])
    origin.extend(reading.origin[at:])
    return Reading("".join(out), origin)


def _join_spaced(group: str, positions: list[int]) -> list[tuple[str, int]]:
    """Letters joined; a wider separator (" - ") between two runs stays a word break: "r i s k - f r e e"."""
    out = []
    for i, (ch, pos) in enumerate(zip(group, positions)):
        if ch.isalpha():
            out.append((ch, pos))
        elif ch in "-/" and 0 < i < len(group) - 1 and group[i - 1] == " ":
            out.append((" ", pos))
    return out


def _unleet(group: str, positions: list[int]) -> list[tuple[str, int]]:
    # A word that starts with a digit is a unit or a name ("4G", "10x", "2FA", "3rd"), not a disguise.
    if group[0].isdigit():
        return list(zip(group, positions))
    # Trailing punctuation is punctuation ("free!"), not a letter.
    end = len(group)
    while end > 1 and group[end - 1] in "!$|":
        end -= 1
    return [(LEET.get(ch, ch) if i < end else ch, pos) for i, (ch, pos) in enumerate(zip(group, positions))]


def view(text: str) -> View:
    """Both readings of `text`, with what was hidden in it. `clean.origin` points into the original text,
    `plain.origin` into `clean` (validators report spans in `clean`; the reviewer maps them back once)."""
    clean, hidden = _fold(text)
    base = Reading(clean.text, list(range(len(clean.text))))
    plain = _rewrite(_rewrite(base, SPACED, _join_spaced), LEET_WORD, _unleet)
    return View(original=text, clean=clean, plain=plain, hidden=hidden)


def fold(text: str) -> str:
    """The clean reading alone: for the texts a draft is compared with (template, disclosures, facts)."""
    return _fold(text)[0].text
