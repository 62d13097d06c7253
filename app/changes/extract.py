"""The new values a change request gives, normalised: phone numbers in E.164 (where the country is known or the
number is international), emails, IBANs (checksum verified), VAT numbers, seat counts, street addresses. IBANs
and phone numbers are masked wherever they are shown."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE)
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
VAT = re.compile(r"\b(?:VAT|tax)\b[^.\n]{0,30}?\b([A-Z]{2}\s?[0-9A-Z]{8,12})\b", re.IGNORECASE)
SEATS = re.compile(r"\b(\d{1,5})\s+(?:more\s+|additional\s+|extra\s+|new\s+)?(?:seats?|licen[cs]es?|users?|people|"
                   r"user\s+licen[cs]es)\b", re.IGNORECASE)
STREET = re.compile(r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][\w'.-]*\s){1,4}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Way|"
                    r"Boulevard|Blvd|Drive|Dr|Place|Pl|Square|Sq|Court|Ct)\b[^.\n]{0,60}"
                    r"|\b(?:Rua|Calle|Via|Rue|Avenida|Strasse|Straße)\s+[^.\n]{3,60}")


@dataclass(frozen=True)
class Values:
    phones: list[str]
    emails: list[str]
    ibans: list[str]
    vats: list[str]
    seats: int | None
    addresses: list[str]


def iban_valid(iban: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def phones(text: str, country: str | None) -> list[str]:
    import phonenumbers

    found = []
    # POSSIBLE (the right length for its country), not VALID: VALID also refuses numbers set aside for examples
    # and fiction, and new ranges libphonenumber does not know yet; letters and wrong lengths still fail.
    for match in phonenumbers.PhoneNumberMatcher(text, (country or "").upper() or None,
                                                 leniency=phonenumbers.Leniency.POSSIBLE):
        before, after = text[match.start - 1:match.start], text[match.end:match.end + 1]
        if before.isalnum() or after.isalnum():  # part of a longer token ("07700 9OO123"): not a phone number
            continue
        found.append(phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164))
    return list(dict.fromkeys(found))


def extract(text: str, country: str | None = None) -> Values:
    ibans = [m.group().replace(" ", "") for m in IBAN.finditer(text) if iban_valid(m.group())]
    vats = [m.group(1).replace(" ", "").upper() for m in VAT.finditer(text)]
    vats = [v for v in vats if v not in ibans and not iban_valid(v)]
    seat_counts = [int(m.group(1)) for m in SEATS.finditer(text)]
    return Values(phones=phones(text, country), emails=list(dict.fromkeys(m.group().lower() for m in EMAIL.finditer(text))),
                  ibans=ibans, vats=vats, seats=seat_counts[-1] if seat_counts else None,
                  addresses=[m.group().strip(" ,") for m in STREET.finditer(text)])


def mask(kind: str, value: Any) -> Any:
    """What may be shown: an IBAN's country, check digits and last four; a phone's last three digits."""
    if kind == "iban":
        return f"{value[:4]} **** {value[-4:]}"
    if kind == "phone":
        return f"{value[:3]}****{value[-3:]}"
    return value


# Which values belong to which change type.
VALUE_KINDS = {"contact_phone": ("phone",), "contact_email": ("email",), "payment_method": ("iban",),
               "billing_details": ("vat", "email"), "seats_change": ("seats",), "postal_address": ("address",),
               "ownership_transfer": ("email",)}


def values_for(change_type: str, values: Values) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in VALUE_KINDS.get(change_type, ()):
        found = {"phone": values.phones, "email": values.emails, "iban": values.ibans, "vat": values.vats,
                 "address": values.addresses, "seats": [values.seats] if values.seats is not None else []}[kind]
        if found:
            out[kind] = found[0]
    return out
