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
# Street names in other languages end in a word for street (-vej, -straße, -katu, -vägen...) or start with one
# (rue, calle, via, ul.), then a house number: "Mellemstræde 74", "ul. Narewska 94", "26 rue des Lilas".
STREET_WORD = (r"(?:[^\W\d_]+(?:vej|gade|weg|wegen|straße|strasse|str\.|gasse|allee|platz|ring|tie|katu|kuja|polku|"
               r"v[äa]gen|gatan|gr[äa]nd|veien|vegen|gata|stræde|strade|vænget|laan|straat|plein|steeg|dreef|ulica|utca|"
               r"ulice|cesta|tee|iela|gatve|yolu|sokak|caddesi|braut|stræti|straeti|vegur))")
FOREIGN_ADDRESS = re.compile(
    rf"\b(?:\d{{1,6}}\s+)?(?:{STREET_WORD}|(?:ul\.|al\.|rue|avenue|avenida|av\.|calle|carrer|via|viale|piazza|rua|"
    rf"praça|paseo|plaza|boulevard|chemin|place|route|strada|piața|str\.|avda\.|c/|λεωφόρος|λεωφ\.|λ\.|οδός|οδ\.)\s+(?:[^\W\d_][\w.'-]*\s+){{0,4}}?)"
    rf"\s*\d{{1,5}}[a-z]?\b(?:[\s,]+(?:Apt\.?|Suite|Unit)\s*\d+)?", re.I)
# Street types written as a word of their own after the name (Hungarian "Kálmán Imre u. 12.", "Erzsébet tér 19.").
AFTER_NAME_ADDRESS = re.compile(
    r"\b(?:[^\W\d_][\w'-]*\s+){1,3}(?:u\.|utca|út|útja|tér|tere|körút|köz|sor|fasor|rakpart|sétány|kapu)\s+\d{1,5}\.?",
    re.I)
# The number before a street that starts with its type, on one line: "26 rue des Lilas", "1812 Rue De La Gare".
NUMBER_THEN_STREET = re.compile(
    r"\b\d{1,6}[a-z]?,?[^\S\n]+(?:rue|avenue|boulevard|bd\.|chemin|allée|impasse|quai|calle|avenida|carrer|via|viale|"
    r"piazza|rua|praça|paseo)[^\S\n]+[^\W\d_][\w'-]*(?:[^\S\n]+[^\W\d_][\w'-]*){0,3}", re.I)
# A street corner: "the corner of 35 Pentelis Str. and Waechter Turnpike".
CORNER = re.compile(r"\b(?:the\s+)?corner of\s+(?:\d{1,6}\s+)?[^\W\d_][^\n,;!?]{2,50}?\s+and\s+"
                    r"(?:\d{1,6}\s+)?[^\W\d_][\w'-]*(?:\s+[^\W\d_][\w'-]*){0,3}", re.I)
# What may surround an address found by a pattern, and belongs to it: a building number before the street on the
# same line ("85199 Avda. Rio Nalon 58", "975 3968 Bay Street"), and after it, on following lines or after
# commas, the flat ("Apt. 461", "Suite 318"), the town, and the postcode and country ("Denmark 29587",
# "Aalborg NO 9100", "SW1A 1AA"). Benchmarks and real signatures split an address so; a finder that stops at the
# street leaves the flat, town and postcode readable in a redacted text.
NUMBER_BEFORE = re.compile(r"(?:(?:Apt\.?|Apartment|Suite|Ste\.?|Unit)\s*\w{1,6}\s+)?\d{1,6}[A-Za-z]?[^\S\n]+$", re.I)
ADDRESS_SEPARATOR = re.compile(r"[^\S\n]*(?:,[^\S\n]*|\n[^\S\n]*>?[^\S\n]*)+")
UNIT_LINE = re.compile(r"(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Floor|Fl\.|Room|Rm\.?|#)\s*\w{1,6}", re.I)
POSTCODE = r"(?:\d{4,6}(?:-\d{3,4})?|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|[A-Z]\d[A-Z]\s?\d[A-Z]\d)"
PLACE_WORD = r"(?:\(?[^\W\d_][^\s,]*\)?)"
PLACE_LINE = re.compile(rf"{PLACE_WORD}(?:\s+{PLACE_WORD}){{0,3}}")
ADDRESS_PART = re.compile(r"[^,\n]*")  # one comma- or line-separated part
POSTAL_LINE = re.compile(rf"(?:{PLACE_WORD}\s+){{0,4}}{POSTCODE}(?:\s+{PLACE_WORD}){{0,3}}")
# A postal block whatever the street is called: a line with a street name and a house number ("28030 Edeby 55")
# followed within three lines by a flat, or a postcode line ("Sweden 99178").
STREET_LINE = re.compile(r"^[^\S\n]*[>?]*[^\S\n]*((?:\d{1,6}[^\S\n]+)?[^\W\d_][\w.'-]*(?:[^\S\n]+[^\W\d_][\w.'-]*){0,3}"
                         r"[^\S\n]+\d{1,5}[a-z]?\b)[^\S\n]*$", re.M)
# Military and post-office boxes: "PSC 6293, Box 8158", "Unit 7349 Box 6067", "P.O. Box 186".
BOX_ADDRESS = re.compile(r"\b(?:PSC|Unit|CMR)\s+\d{3,5},?\s+Box\s+\d{3,5}|\bP\.?\s?O\.?\s+Box\s+\d{1,6}", re.I)
# What follows "lives at", "located at", "my address is", "send it to"...: an address when it has a house number.
ADDRESS_CUE = re.compile(
    r"\b(?:lives? at|living at|located at|address(?:\s+is|\s+to|:)|send (?:it|them|this|a new one|the \w+) to|"
    r"meet (?:me|us) at|office is at|offices are at|based at|deliver(?:ed)? to|ship(?:ped)? to|moved to|move to)"
    r"\s*:?\s*(\d{1,6}[^\S\n]+[^\n.!?;]{3,80})", re.I)
# Digit runs the phone pattern would take that are something else: a timestamp, an IP address, two short
# groups of uneven length with only a space between them (a postcode and a house number), a bare run of 12+
# digits (an account or card number).
NOT_A_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{1,2})?|\d{1,3}(?:\.\d{1,3}){3}|\d{5} \d{2,5}|\d{2,5} \d{2}|\d{12,}")
TITLED = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam|Mme|Herr|Frau|Sr|Sra)\.?\s+((?:[A-Z][^\W\d_'-]*[.'-]?\s?){1,3})")
SELF_NAMED = re.compile(r"\b(?:my name is|name is|i am called|call me|name:)\s+([^\W\d_][^\W\d_'-]+(?:\s+(?-i:[A-Z])[^\W\d_'-]+)?)",
                        re.I)
# The whole answer to a question for a name: "What's your last name? Arcuri", "What's the name on the account?
# User: Keira E. Forster" (not "...your company name? Just reply", where more words follow).
NAME_ANSWER = re.compile(r"\bname(?: on the \w+)?\?[^\S\n]*(?:\n[^\S\n]*)?(?:\w+:[^\S\n]*)?"
                         r"((?-i:[A-Z])[^\W\d_'-]+(?:[^\S\n]+(?-i:[A-Z])[^\W\d_'-]*\.?){0,2})[^\S\n]*(?=[.!\n]|$)", re.I)
DATE = r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2}|(?:\d{1,2}(?:st|nd|rd|th)?\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?:\d{1,2}(?:st|nd|rd|th)?,?\s+)?\d{4})"
BIRTH_DATE = re.compile(rf"\b(?:born(?:\s+on)?|date of birth|d\.?o\.?b\.?|birthday(?:\s+is)?)\s*:?\s*({DATE})", re.I)
# A document number follows its cue ("passport no. X1234567", "licence number is 6940579") and holds a digit. The
# look-ahead makes the pattern read past "number is" to the number: without it "number" itself was the capture,
# failed the digit check below, and the licence went unfound (or was called a phone).
DOCUMENT_CUE = r"(?:\s+(?:no\.?|number|#))?(?:\s+(?:is|was))?\s*[:#=]?\s*"
PASSPORT = re.compile(rf"\bpassport{DOCUMENT_CUE}((?=[A-Z]*\d)[A-Z0-9]{{6,12}})\b", re.I)
LICENCE = re.compile(rf"\b(?:driver'?s?\s+)?licen[cs]e{DOCUMENT_CUE}((?=[A-Z-]*\d)[A-Z0-9-]{{5,16}})\b", re.I)
# Twelve-digit cards (Maestro) only where the text says it is a card: "credit card 587428561654", "cc 503802053770".
SHORT_CARD = re.compile(rf"\b(?:card|cc|maestro){DOCUMENT_CUE}(\d{{12}})\b", re.I)
PASSWORD = re.compile(r"\b(?:password|passcode|pin)\s*(?:is|:|=)\s*(\S{4,})", re.I)
NAME_TOKEN = re.compile(r"(?<![\w])[^\W\d_][^\W\d_'-]*(?:['-][^\W\d_]+)?\.?")


@dataclass(frozen=True)
class Found:
    start: int
    end: int
    kind: str  # email | phone | card_number | iban | national_id | account_number | street_address |
    #            date_of_birth | passport | licence | password | person


def luhn(digits: str, shortest: int = 13) -> bool:
    if not shortest <= len(digits) <= 19:
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
    for locale in ("en_US", "en_GB", "en_IE", "de_DE", "de_AT", "fr_FR", "es_ES", "it_IT", "pt_PT", "pt_BR", "nl_NL",
                   "sv_SE", "fi_FI", "pl_PL", "da_DK", "no_NO", "hu_HU", "cs_CZ", "sk_SK", "sl_SI", "hr_HR", "ro_RO",
                   "et_EE", "lt_LT", "lv_LV", "tr_TR", "es_MX", "fr_CH", "ga_IE"):
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


NOT_A_NAME = frozenset({"on", "at", "back", "later", "now", "today", "tomorrow", "when", "if", "to", "please", "asap",
                        "soon", "in", "after", "before", "anytime", "any", "the", "a", "an", "not", "also", "still"})


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
        if head in firsts and len(head) > 2:  # a known first name on its own ("Hi Freddy", "says Izumi")
            out.append(Found(tokens[i].start(), tokens[i].start() + len(head), "person"))
        i += 1
    for pattern in (TITLED, SELF_NAMED, NAME_ANSWER):  # "Mrs. Karataev", "my name is Rubija", "name? Arcuri"
        for match in pattern.finditer(text):
            if match.group(1).split()[0].lower() in NOT_A_NAME:  # "call me on ...", "my name is on the invoice"
                continue
            out.append(Found(match.start(1), match.start(1) + len(match.group(1).rstrip(" .")), "person"))
    return out


def _is_place(segment: str) -> bool:
    """A town, region or country line: one to four words, each starting with a capital (or in capitals)."""
    return bool(PLACE_LINE.fullmatch(segment)) and all(w.lstrip("(")[:1].isupper() for w in segment.split())


def _is_postal(segment: str) -> bool:
    """A postcode with its town, region or country ("Sweden 99178", "Aalborg NO 9100", "London SW1A 2AA")."""
    return bool(POSTAL_LINE.fullmatch(segment)) and any(c.isdigit() for c in segment) \
        and all(w.lstrip("(")[:1].isupper() or w[:1].isdigit() for w in segment.split())


def _ends_a_street(lines: list[str]) -> bool:
    """Whether the lines after a street line complete a postal block: a flat, or a town and a postcode line."""
    lines = [line for line in lines if line][:3]
    if any(UNIT_LINE.fullmatch(line) for line in lines):
        return True
    return len(lines) >= 2 and all(_is_place(line) or _is_postal(line) for line in lines[:2]) \
        and any(_is_postal(line) for line in lines[:3])


def _postcode_follows(text: str, at: int) -> bool:
    """Whether one of the next three comma- or line-separated parts after `at` is a postcode line."""
    return any(_is_postal(part.strip(" >")) for part in re.split(r"[,\n]", text[at:at + 200])[1:4])


def address_block(text: str, start: int, end: int) -> tuple[int, int]:
    """The whole address around a street found at text[start:end]: a number before it on its line, and the
    flat, town, postcode and country lines or comma-separated parts after it (at most five)."""
    before = NUMBER_BEFORE.search(text, max(0, start - 30), start)
    if before:
        start = before.start()
    for _ in range(5):
        separator = ADDRESS_SEPARATOR.match(text, end)
        if not separator or separator.end() == end:
            break
        part = ADDRESS_PART.match(text, separator.end())
        segment = part.group().rstrip()
        if not segment or len(segment) > 60:
            break
        if UNIT_LINE.fullmatch(segment) or _is_postal(segment) \
                or _is_place(segment) and ("\n" not in text[end:separator.end()] or _postcode_follows(text, part.end())):
            end = separator.end() + len(segment)
        else:
            break
    return start, end


def find(text: str, patterns: dict[str, re.Pattern[str]]) -> list[Found]:
    """Every piece of personal data found, longest first where two overlap."""
    found: list[Found] = []

    def add(start: int, end: int, kind: str) -> bool:
        if any(start < f.end and f.start < end for f in found):
            return False
        found.append(Found(start, end, kind))
        return True

    for match in BIRTH_DATE.finditer(text):
        add(match.start(1), match.end(1), "date_of_birth")
    for pattern, kind in ((PASSWORD, "password"), (PASSPORT, "passport"), (LICENCE, "licence")):
        for match in pattern.finditer(text):
            if any(ch.isdigit() for ch in match.group(1)):
                add(match.start(1), match.end(1), kind)
    for match in SHORT_CARD.finditer(text):
        if luhn(match.group(1), shortest=12):
            add(match.start(1), match.end(1), "card_number")
    for kind in ("email", "iban", "card_number", "national_id", "account_number"):
        for match in patterns[kind].finditer(text):
            digits = re.sub(r"\D", "", match.group())
            if kind == "card_number" and not luhn(digits):
                continue
            add(match.start(), match.end(), kind)
    # Phone numbers of ten digits or more first, then addresses, then shorter digit runs: "975 3968 Bay Street" holds
    # a house and a street number the phone pattern would take, but no address may swallow a full phone number
    # (a phone is blocked, an address is not).
    digit_runs = [(match, len(re.sub(r"\D", "", match.group()))) for match in patterns["phone"].finditer(text)
                  if not NOT_A_PHONE.fullmatch(match.group().strip())]
    for match, digits in digit_runs:
        if digits >= 10:
            add(match.start(), match.end(), "phone")
    streets = [match.span() for pattern in (ADDRESS, BOX_ADDRESS, FOREIGN_ADDRESS, NUMBER_THEN_STREET,
                                            AFTER_NAME_ADDRESS, CORNER) for match in pattern.finditer(text)]
    streets += [match.span(1) for match in STREET_LINE.finditer(text)
                if _ends_a_street([line.strip(" \t>?") for line in text[match.end():].split("\n")[1:6]])]
    # The longest address first where two readings overlap ("1812 Rue De La Gare / Apt. 271 / St Felicien" over
    # "271 St").
    blocks = sorted(((address_block(text, *street), street) for street in streets), key=lambda b: b[0][0] - b[0][1])
    for block, street in blocks:
        add(*block, "street_address") or add(*street, "street_address")
    for match, digits in digit_runs:
        if 7 <= digits < 10:
            add(match.start(), match.end(), "phone")
    for match in ADDRESS_CUE.finditer(text):
        add(match.start(1), match.end(1), "street_address")
    for person in people(text):
        add(person.start, person.end, person.kind)
    return sorted(found, key=lambda f: f.start)


def redact(text: str, patterns: dict[str, re.Pattern[str]]) -> str:
    """The text with each piece of personal data replaced by its kind in brackets ("[email]", "[person]"), so a
    classifier (and anyone reading its input) sees what was said, not who said it."""
    out, last = [], 0
    for found in find(text, patterns):
        out.append(text[last:found.start])
        out.append(f"[{found.kind}]")
        last = found.end
    out.append(text[last:])
    return "".join(out)

