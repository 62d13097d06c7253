"""Finding personal data in a text, without a model download: patterns for structured identifiers (cards
with a Luhn check, IBANs, social security, passport and licence numbers, phone numbers, emails, account
references, street addresses, dates of birth, passwords) and name lists for people's names.

The names come from the Faker package's locale data (first and last names of several locales), which ships
inside a wheel already installed with guardrails-ai. `eval/pii_benchmark.py` measures this finder on
Presidio's synthetic benchmark by entity type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

ADDRESS = re.compile(
    r"\b\d{1,6}[A-Za-z]?\s+(?:[A-Z][\w'.-]*\s+){0,4}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Boulevard|Blvd\.?|Lane|Ln\.?|"
    r"Drive|Dr\.?|Court|Ct\.?|Place|Pl\.?|Square|Sq\.?|Way|Terrace|Parkway|Pkwy|Highway|Hwy|Circle|Cir\.?|Trail|"
    r"Crescent|Close|Row|Alley|Plaza|Heights|Gardens|Strasse|Straße|Rua|Calle|Via|Katu|katu|gatan|vej|laan|weg)\b"
    r"(?:[\s,]+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Floor|#)\s*\w+)?", re.I)
DATE = r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2}|(?:\d{1,2}(?:st|nd|rd|th)?\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?:\d{1,2}(?:st|nd|rd|th)?,?\s+)?\d{4})"
BIRTH_DATE = re.compile(rf"\b(?:born(?:\s+on)?|date of birth|d\.?o\.?b\.?|birthday(?:\s+is)?)\s*:?\s*({DATE})", re.I)
PASSPORT = re.compile(r"\bpassport(?:\s+(?:no\.?|number|#))?\s*:?\s*([A-Z0-9]{6,12})\b", re.I)
LICENCE = re.compile(r"\b(?:driver'?s?\s+)?licen[cs]e(?:\s+(?:no\.?|number|#))?\s*:?\s*([A-Z0-9-]{5,16})\b", re.I)
PASSWORD = re.compile(r"\b(?:password|passcode|pin)\s*(?:is|:|=)\s*(\S{4,})", re.I)
NAME_TOKEN = re.compile(r"(?<![\w])[^\W\d_][^\W\d_'-]*(?:['-][^\W\d_]+)?\.?")


@dataclass(frozen=True)
class Found:
    start: int
    end: int
    kind: str  # email | phone | card_number | iban | national_id | account_number | street_address |
    #            date_of_birth | passport | licence | password | person


def luhn(digits: str) -> bool:
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


@lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """First and last names from Faker's locales (shipped in its wheel: nothing is downloaded)."""
    from importlib import import_module

    firsts: set[str] = set()
    lasts: set[str] = set()
    for locale in ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_PT", "nl_NL", "sv_SE", "fi_FI", "pl_PL"):
        try:
            provider = import_module(f"faker.providers.person.{locale}").Provider
        except (ImportError, AttributeError):
            continue
        for attr in ("first_names", "first_names_male", "first_names_female"):
            firsts |= set(getattr(provider, attr, ()) or ())
        lasts |= set(getattr(provider, "last_names", ()) or ())
    common = {"May", "June", "Will", "Mark", "Bill", "Grant", "Rich", "Hope", "Faith", "Joy", "Page", "Young", "Long",
              "Price", "Cash", "Best", "Hall", "Rose", "Summer", "Miles", "Chase", "Case", "Day", "Love", "Sale"}
    return frozenset(firsts - common), frozenset(lasts - common)


def people(text: str) -> list[Found]:
    """A known first name followed by capitalised words or initials ("Faina D. Yefremova", "Sophie Lang"), or a
    known first and last name together: a person's name."""
    firsts, lasts = name_lists()
    tokens = [t for t in NAME_TOKEN.finditer(text) if t.group()[0].isupper()]
    out, i = [], 0
    while i < len(tokens):
        head = tokens[i].group().rstrip(".")
        j = i
        while j + 1 < len(tokens) and tokens[j + 1].start() - tokens[j].end() <= 1 and j - i < 3:
            j += 1
        if j > i and (head in firsts or (head in lasts and tokens[i + 1].group().rstrip(".") in lasts)):
            out.append(Found(tokens[i].start(), tokens[j].end(), "person"))
            i = j + 1
            continue
        i += 1
    return out


def find(text: str, patterns: dict[str, re.Pattern[str]]) -> list[Found]:
    """Every piece of personal data found, longest first where two overlap."""
    found: list[Found] = []

    def add(start: int, end: int, kind: str) -> None:
        if not any(start < f.end and f.start < end for f in found):
            found.append(Found(start, end, kind))

    for match in BIRTH_DATE.finditer(text):
        add(match.start(1), match.end(1), "date_of_birth")
    for pattern, kind in ((PASSWORD, "password"), (PASSPORT, "passport"), (LICENCE, "licence")):
        for match in pattern.finditer(text):
            if any(ch.isdigit() for ch in match.group(1)):
                add(match.start(1), match.end(1), kind)
    for kind in ("email", "iban", "card_number", "national_id", "account_number", "phone"):
        for match in patterns[kind].finditer(text):
            digits = re.sub(r"\D", "", match.group())
            if kind == "phone" and len(digits) < 7:
                continue
            if kind == "card_number" and not luhn(digits):
                continue
            add(match.start(), match.end(), kind)
    for match in ADDRESS.finditer(text):
        add(match.start(), match.end(), "street_address")
    for person in people(text):
        add(person.start, person.end, person.kind)
    return sorted(found, key=lambda f: f.start)
