"""Column mapping files: how the columns of a source file become canonical records.

A mapping is YAML. `records` names the canonical record kinds one source row yields
(customer, consent, event, outreach); each maps a canonical field to a value spec:

    age: age                                   # the source column of that name
    channel: {column: contact, values: {cellular: call}}   # recode values; others pass through
    lifecycle_stage: {const: lead}             # a constant
    id: {template: "bank-{_row}"}              # str.format over the row; {_row} is the row number
    attributes: {columns: {contacts_in_campaign: campaign}}  # several columns into one dict
    attempted_at: {date_parts: {day: day, month: month, year_by_row: {1: 2008, 27730: 2009}}}

`{_row}` is the 1-based data row of the file, or the `_row` column when the file has one
(as a rejected-rows file does), so ids stay stable when rejected rows are fixed and re-imported.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.domain import RECORD_TYPES, first_problem

BUILTIN_MAPPINGS_DIR = Path(__file__).parent / "mappings"
MONTHS = {name: number for number, name in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the field."""


class DateParts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: str
    month: str
    year: str | None = None
    year_by_row: dict[int, int] | None = None
    hour: str | None = None
    default_hour: int = Field(default=12, ge=0, le=23)

    @model_validator(mode="after")
    def _one_year_source(self) -> DateParts:
        if (self.year is None) == (self.year_by_row is None):
            raise ValueError("date_parts needs exactly one of year (a column) or year_by_row")
        return self


class SourceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["csv", "parquet", "jsonl"] | None = None
    sep: str = ","


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    source: SourceOptions = SourceOptions()
    records: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _known_kinds_and_fields(self) -> Mapping:
        if not self.records:
            raise ValueError("records: at least one record kind is needed")
        for kind, fields in self.records.items():
            if kind not in RECORD_TYPES:
                raise ValueError(f"records.{kind}: unknown record kind (use one of {', '.join(RECORD_TYPES)})")
            known = RECORD_TYPES[kind].model_fields
            for name, spec in fields.items():
                if name not in known:
                    raise ValueError(f"records.{kind}.{name}: not a field of a {kind} record")
                _check_spec(f"records.{kind}.{name}", spec)
        return self

    def source_columns(self) -> set[str]:
        """Every source column the mapping reads: each must be in the file."""
        columns: set[str] = set()
        for fields in self.records.values():
            for spec in fields.values():
                columns |= _spec_columns(spec)
        return columns

    def column_of(self, kind: str, field: str) -> str | None:
        """The source column behind a canonical field, to name it in error messages."""
        spec = self.records.get(kind, {}).get(field)
        if isinstance(spec, str):
            return spec
        if isinstance(spec, dict) and ("column" in spec or "date_parts" in spec):
            return ", ".join(sorted(_spec_columns(spec)))
        return None


_SPEC_KEYS = {"column", "const", "template", "columns", "date_parts"}


def _check_spec(where: str, spec: Any) -> None:
    if isinstance(spec, str):
        return
    if not isinstance(spec, dict) or not (_SPEC_KEYS & spec.keys()):
        raise ValueError(f"{where}: a column name or one of {{{', '.join(sorted(_SPEC_KEYS))}}} is needed")
    if "date_parts" in spec:
        try:
            DateParts.model_validate(spec["date_parts"])
        except ValidationError as exc:
            raise ValueError(f"{where}.date_parts: {exc.errors()[0]['msg']}") from None


def _spec_columns(spec: Any) -> set[str]:
    if isinstance(spec, str):
        return {spec}
    if "column" in spec:
        return {spec["column"]}
    if "columns" in spec:
        columns = spec["columns"]
        return set(columns.values() if isinstance(columns, dict) else columns)
    if "date_parts" in spec:
        parts = DateParts.model_validate(spec["date_parts"])
        return {c for c in (parts.day, parts.month, parts.year, parts.hour) if c}
    return set()


def load_mapping(name_or_path: str | Path) -> Mapping:
    """A mapping from a YAML file, or a built-in one by name (e.g. `bank-marketing`)."""
    path = Path(name_or_path)
    if not path.exists():
        builtin = BUILTIN_MAPPINGS_DIR / f"{name_or_path}.yaml"
        if not builtin.exists():
            known = ", ".join(sorted(p.stem for p in BUILTIN_MAPPINGS_DIR.glob("*.yaml")))
            raise MappingError(f"{name_or_path}: no such mapping file (built-in mappings: {known})")
        path = builtin
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        raise MappingError(f"{path}: {first_problem(exc)}") from None


def is_missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and value != value)


def resolve(spec: Any, row: dict[str, Any]) -> Any:
    """The value of one canonical field for one source row."""
    if isinstance(spec, str):
        value = row.get(spec)
        return None if is_missing(value) else value
    if "const" in spec:
        return spec["const"]
    if "column" in spec:
        value = row.get(spec["column"])
        if is_missing(value):
            return spec.get("default")
        values = spec.get("values") or {}
        return values.get(str(value).strip(), value)
    if "template" in spec:
        return spec["template"].format(**row)
    if "columns" in spec:
        columns = spec["columns"]
        pairs = columns.items() if isinstance(columns, dict) else ((c, c) for c in columns)
        return {name: _scalar(row.get(column)) for name, column in pairs if not is_missing(row.get(column))}
    return _date_from_parts(DateParts.model_validate(spec["date_parts"]), row)


def _scalar(value: Any) -> Any:
    """Numbers read from text files come back as numbers inside `attributes`."""
    if isinstance(value, str):
        text = value.strip()
        for kind in (int, float):
            try:
                number = kind(text)
            except ValueError:
                continue
            return number if math.isfinite(number) else text
        return text
    return value


def _date_from_parts(parts: DateParts, row: dict[str, Any]) -> str:
    month_raw = str(row.get(parts.month, "")).strip().lower()
    month = MONTHS.get(month_raw[:3]) if not month_raw.isdigit() else int(month_raw)
    if month is None:
        raise ValueError(f"column {parts.month!r}: {month_raw!r} is not a month")
    if parts.year_by_row is not None:
        number = int(row["_row"])
        year = max((y for start, y in parts.year_by_row.items() if start <= number), default=None)
        if year is None:
            raise ValueError(f"year_by_row has no year for row {number}")
    else:
        year = int(row[parts.year])
    day = int(str(row.get(parts.day)).strip())
    hour = int(row[parts.hour]) if parts.hour else parts.default_hour
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:00:00"
