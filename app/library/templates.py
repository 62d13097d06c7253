"""Template files: Markdown with YAML front matter and a Jinja2 body, validated before anything is stored."""

from __future__ import annotations

import hashlib
import re
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from app.domain import Channel, first_problem

# What a template body may refer to: a placeholder outside this list fails validation.
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "customer": frozenset({"first_name", "last_name", "company", "segment", "industry"}),
    "product": frozenset({"name", "key"}),
    "rep": frozenset({"name", "first_name", "phone", "email"}),
    "company": frozenset({"name", "website", "support_email", "phone"}),
    # Only in change confirmations (stage change_confirmation): what the change-request rules tell the customer.
    "change": frozenset({"told"}),
}
PLACEHOLDER_WORDS = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")
_PLACEHOLDER_NAMES = {"customer.first_name": "the customer", "product.name": "the product", "rep.name": "",
                      "rep.first_name": "", "company.name": "us", "company.website": "our website",
                      "company.support_email": "support", "rep.phone": "our phone"}
SALUTATION = re.compile(r"^((Hi|Hello|Dear)\b[^.!?]{0,40},|Best regards,?|Kind regards,?|Thanks,?)$")
SLUG = r"^[a-z0-9][a-z0-9-]{2,94}[a-z0-9]$"
# The sandbox keeps a template from reaching Python internals; StrictUndefined makes a missing value fail.
JINJA = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    RETIRED = "retired"


class Stage(StrEnum):
    """The stages the product's own decisions ask templates for; a company's taxonomy may name more."""

    NEW_LEAD = "new_lead"
    FOLLOW_UP = "follow_up"
    UPSELL = "upsell"
    RENEWAL = "renewal"
    WIN_BACK = "win_back"
    CHANGE_REQUEST = "change_request"
    # Confirmations of an applied change request (app/changes/confirm.py); never offered to a card.
    CHANGE_CONFIRMATION = "change_confirmation"


STAGE_NAME = r"^[a-z][a-z0-9_]{1,31}$"


class TemplateFileError(ValueError):
    """A template file that cannot be imported; the message names the file and the field."""


class TemplateSpec(BaseModel):
    """The front matter and body of one template version."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, use_enum_values=True)

    id: str = Field(pattern=SLUG)
    title: str = Field(min_length=3, max_length=200)
    channel: Channel
    products: list[str] = Field(min_length=1)
    # Stages and intents come from the company's taxonomy (script_library/intents.yaml): checked against it when
    # the taxonomy is given as validation context (importing, editing), read back from the store as they are.
    stage: str = Field(pattern=STAGE_NAME)
    intents: list[str] = Field(default_factory=list)
    language: str = Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    status: TemplateStatus
    sensitive: bool
    owner: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    disclosures: list[str] = Field(default_factory=list)
    body: str = Field(min_length=1)

    @field_validator("stage")
    @classmethod
    def _a_stage_of_the_taxonomy(cls, stage: str, info: ValidationInfo) -> str:
        allowed = (info.context or {}).get("stages")
        if allowed is not None and stage not in allowed:
            raise ValueError(f"unknown stage {stage!r}: the company's taxonomy (intents.yaml `stages`) names "
                             f"{', '.join(sorted(allowed))}")
        return stage

    @field_validator("intents")
    @classmethod
    def _intents_of_the_taxonomy(cls, intents: list[str], info: ValidationInfo) -> list[str]:
        allowed = (info.context or {}).get("intents")
        unknown = [i for i in intents if allowed is not None and i not in allowed]
        if unknown:
            raise ValueError(f"unknown intent {unknown[0]!r}: the company's taxonomy (intents.yaml) names "
                             f"{', '.join(sorted(allowed))}")
        return intents

    @field_validator("body")
    @classmethod
    def _valid_jinja_with_known_placeholders(cls, body: str) -> str:
        check_body(body)
        return body

    @model_validator(mode="after")
    def _change_fields_only_in_confirmations(self) -> TemplateSpec:
        if self.stage != Stage.CHANGE_CONFIRMATION and re.search(r"\{\{[^}]*\bchange\.", self.body):
            raise ValueError("{{ change.* }} is only known to change confirmations (stage change_confirmation)")
        return self

    @property
    def content_hash(self) -> str:
        """What makes two versions the same: everything but status and version numbers."""
        payload = self.model_dump(exclude={"status", "version"})
        return hashlib.sha256(yaml.safe_dump(payload, sort_keys=True).encode()).hexdigest()

    def search_text(self) -> str:
        """What the embedding sees: the purpose, then the script's own words without what every script
        shares (disclosures, sign-offs, placeholders), which would pull all templates together."""
        body = self.body
        for line in self.disclosures:
            body = body.replace(line, " ")
        body = PLACEHOLDER_WORDS.sub(lambda m: _PLACEHOLDER_NAMES.get(m.group(1), " "), body)
        body = " ".join(line.strip("- ").removeprefix("Subject:").strip() for line in body.splitlines()
                        if line.strip() and not SALUTATION.match(line.strip()))
        return (f"{self.title}. {self.stage.replace('_', ' ')}"
                + (f", {', '.join(i.replace('_', ' ') for i in self.intents)}" if self.intents else "")
                + f". {body}")


# What a script may contain besides text: fields, conditions on them and a few text filters. No loops,
# arithmetic, calls, macros or includes: a script fills in facts, it does not compute. This keeps rendering
# bounded in size and time by construction (`{{ customer.first_name * 10**8 }}` is refused at edit time).
ALLOWED_NODES = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Getattr, nodes.Name, nodes.Const, nodes.If,
                 nodes.CondExpr, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Filter,
                 nodes.Test, nodes.Concat)
ALLOWED_FILTERS = frozenset({"upper", "lower", "title", "capitalize", "trim", "default", "d"})
ALLOWED_TESTS = frozenset({"defined", "undefined", "none", "string"})
# The render budget a script must fit with long values in every field.
MAX_RENDERED_CHARS = 20_000
MAX_RENDER_SECONDS = 0.5
LONG_VALUE = "x" * 200


def check_body(body: str) -> None:
    """Invalid Jinja2, a construct other than fields, conditions and text filters, a placeholder that is not
    a known customer / product / rep / company field, or a render over budget, fails."""
    try:
        tree = JINJA.parse(body)
    except TemplateSyntaxError as exc:
        raise ValueError(f"invalid Jinja2 at line {exc.lineno}: {exc.message}") from None
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, ALLOWED_NODES):
            kind = type(node).__name__.lower()
            raise ValueError(f"line {node.lineno}: a script may use fields, if-conditions and text filters only "
                             f"(found {kind})")
        if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
            raise ValueError(f"line {node.lineno}: filter {node.name!r} is not allowed "
                             f"(allowed: {', '.join(sorted(ALLOWED_FILTERS))})")
        if isinstance(node, nodes.Test) and node.name not in ALLOWED_TESTS:
            raise ValueError(f"line {node.lineno}: test {node.name!r} is not allowed")
    for node in tree.find_all(nodes.Getattr):
        if not isinstance(node.node, nodes.Name):
            raise ValueError(f"line {node.lineno}: .{node.attr} goes too deep: a placeholder is a root and a field, "
                             "e.g. {{ customer.first_name }}")
        if isinstance(node.node, nodes.Name):
            root, field = node.node.name, node.attr
            if root not in PLACEHOLDERS:
                raise ValueError(f"unknown placeholder {{{{ {root}.{field} }}}} (known: {', '.join(PLACEHOLDERS)})")
            if field not in PLACEHOLDERS[root]:
                raise ValueError(f"unknown placeholder {{{{ {root}.{field} }}}} "
                                 f"(known {root} fields: {', '.join(sorted(PLACEHOLDERS[root]))})")
    attribute_roots = {id(n.node) for n in tree.find_all(nodes.Getattr)}
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and id(name) not in attribute_roots:
            raise ValueError(f"placeholder {{{{ {name.name} }}}} must name a field, e.g. {{{{ customer.first_name }}}}")
    _check_render_budget(body)


def _check_render_budget(body: str) -> None:
    """Render the script as drafting will, with long values everywhere: it must stay within the budget."""
    sample = {root: {field: LONG_VALUE for field in fields} for root, fields in PLACEHOLDERS.items()}
    started = time.perf_counter()
    try:
        rendered = render(body, sample)
    except Exception as exc:  # noqa: BLE001 - a sandbox refusal or a render error is the author's to fix
        raise ValueError(f"cannot be rendered: {exc}") from None
    if len(rendered) > MAX_RENDERED_CHARS:
        raise ValueError(f"renders to {len(rendered):,} characters (at most {MAX_RENDERED_CHARS:,})")
    if time.perf_counter() - started > MAX_RENDER_SECONDS:
        raise ValueError(f"takes more than {MAX_RENDER_SECONDS} s to render")


def render(body: str, context: dict[str, dict[str, Any]]) -> str:
    """The body with the given values; a missing value raises instead of leaving a gap."""
    return JINJA.from_string(body).render(**context)


def parse_file(path: Path, vocabulary: dict[str, frozenset[str]] | None = None) -> TemplateSpec:
    """One template file, fully validated (stages and intents against `vocabulary`, the company taxonomy's:
    see `vocabulary_of`); any problem names the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateFileError(f"{path}: cannot be read: {exc}") from None
    if not text.startswith("---"):
        raise TemplateFileError(f"{path}: no YAML front matter (the file must start with a line '---')")
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        raise TemplateFileError(f"{path}: the front matter is not closed by a line '---'")
    try:
        meta = yaml.safe_load(parts[0][3:]) or {}
    except yaml.YAMLError as exc:
        raise TemplateFileError(f"{path}: front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise TemplateFileError(f"{path}: front matter must be a mapping of fields")
    body = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    try:
        return TemplateSpec.model_validate({**meta, "body": body.strip("\n") + "\n"}, context=vocabulary)
    except ValidationError as exc:
        raise TemplateFileError(f"{path}: {first_problem(exc)}") from None


def vocabulary_of(stages: frozenset[str], intents: frozenset[str]) -> dict[str, frozenset[str]]:
    """What templates may name: the product's own stages and the taxonomy's, and the taxonomy's intents."""
    return {"stages": frozenset(s.value for s in Stage) | stages, "intents": intents}


def to_file_text(spec: TemplateSpec) -> str:
    meta = spec.model_dump(exclude={"body"})
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n" + spec.body
