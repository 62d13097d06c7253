"""PII stays out of the prompt: identifiers become placeholders before the call and come back after it.

Known values (the customer's names, email, phone, account numbers, the rep's contact details) are
replaced wherever they appear, including inside customer free text; any other email address, phone
number or long digit run found in the text is masked by pattern. The model sees `[FIRST_NAME]`,
`[EMAIL_2]` ...; `unmask` puts the real values back into what it wrote.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Card, account and national id numbers: 8+ digits, possibly grouped by spaces or dashes.
LONG_NUMBER = re.compile(r"(?<![\w-])(?!\d{4}-\d{2}-\d{2}(?!\d))(?:\d[ -]?){7,}\d(?![\w-])")  # not ISO dates
PHONE = re.compile(r"(?<![\w])(?!\d{4}-\d{2}-\d{2}(?!\d))\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w])")
PLACEHOLDER = re.compile(r"\[(?:[A-Z]+_)*[A-Z]+(?:_\d+)?\]")


class Masker:
    """One draft's placeholder table; `mask` and `unmask` are inverse on the values it knows."""

    def __init__(self, known: dict[str, str]) -> None:
        # placeholder -> real value; longest values first so "Ana Lima" wins over "Ana".
        self.table: dict[str, str] = {}
        self._by_value: dict[str, str] = {}
        for placeholder, value in sorted(known.items(), key=lambda kv: -len(kv[1] or "")):
            if value and value.strip():
                self._add(f"[{placeholder}]", value.strip())
        self._counters: dict[str, int] = {}

    def _add(self, placeholder: str, value: str) -> str:
        self.table.setdefault(placeholder, value)
        return self._by_value.setdefault(value, placeholder)

    def _numbered(self, kind: str, value: str) -> str:
        if value in self._by_value:
            return self._by_value[value]
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return self._add(f"[{kind}_{self._counters[kind]}]", value)

    def mask(self, text: str) -> str:
        for value, placeholder in sorted(self._by_value.items(), key=lambda kv: -len(kv[0])):
            text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", placeholder, text)
        text = EMAIL.sub(lambda m: self._numbered("EMAIL", m.group()), text)
        text = LONG_NUMBER.sub(lambda m: self._numbered("NUMBER", m.group()), text)
        return PHONE.sub(lambda m: self._numbered("PHONE", m.group())
                         if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), text)

    def unmask(self, text: str) -> str:
        return PLACEHOLDER.sub(lambda m: self.table.get(m.group(), m.group()), text)

    def unknown_placeholders(self, text: str) -> list[str]:
        """Placeholders in `text` that this table cannot fill (invented by the model)."""
        return sorted({m.group() for m in PLACEHOLDER.finditer(text) if m.group() not in self.table})
