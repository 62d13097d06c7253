"""Prompt templates from `prompts/`: rendered with StrictUndefined, versioned by number and content hash."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

VERSION_LINE = re.compile(r"\{#-?\s*version:\s*(\d+)\s*-?#\}")
ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                           trim_blocks=False)


class PromptError(ValueError):
    """A prompt file that is missing or invalid; the message names the file."""


@dataclass(frozen=True)
class PromptSet:
    """The system, user and repair templates of one drafting mode."""

    mode: str
    version: str
    system: str
    user: str
    repair: str
    # Worked examples (few-shot) for small models: `{mode}.examples.yaml`, optional.
    examples: tuple[dict[str, Any], ...] = ()

    @classmethod
    def load(cls, folder: Path, mode: str) -> PromptSet:
        texts, numbers = {}, []
        for part, name in (("system", f"{mode}.system.j2"), ("user", f"{mode}.user.j2"), ("repair", "repair.user.j2")):
            path = folder / name
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise PromptError(f"prompt file {path} cannot be read ({exc.strerror}); set PROMPTS_DIR") from None
            found = VERSION_LINE.search(text)
            if not found:
                raise PromptError(f"prompt file {path}: first line must declare its version, e.g. {{#- version: 1 -#}}")
            numbers.append(found.group(1))
            texts[part] = text
        examples_file = folder / f"{mode}.examples.yaml"
        examples_text = examples_file.read_text(encoding="utf-8") if examples_file.is_file() else ""
        try:
            examples = tuple(yaml.safe_load(examples_text) or ())
        except yaml.YAMLError as exc:
            raise PromptError(f"prompt examples {examples_file}: invalid YAML ({exc})") from None
        for number, example in enumerate(examples, start=1):
            missing = {"when", "product", "reasons", "opening"} - set(example or {})
            if missing:
                raise PromptError(f"prompt examples {examples_file}: example {number} lacks {', '.join(sorted(missing))}")
        parts = [texts[p] for p in ("system", "user", "repair")] + [examples_text]
        digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]
        return cls(mode=mode, version=f"{mode}-v{'.'.join(numbers)}+{digest}", examples=examples, **texts)

    def shots(self, reasons: list[str], count: int = 2) -> list[dict[str, Any]]:
        """Examples to show before the request, the nearest to the first reason last (small models copy
        the most recent example's shape)."""
        if not self.examples:
            return []
        first = reasons[0].lower() if reasons else ""
        nearest = next((e for e in self.examples if any(w in first for w in e["when"])), None)
        if nearest is None:
            # No example fits the first reason: the neutral one, so the model is not steered to a claim ("it has
            # been a while") that nothing supports.
            nearest = next((e for e in self.examples if e.get("default")), None)
        others = [e for e in self.examples if e is not nearest and not e.get("default")][: count - (nearest is not None)]
        return others + ([nearest] if nearest is not None else [])

    def messages(self, values: dict[str, Any], *, product: str) -> tuple[list[dict[str, str]], str]:
        """The chat sent to the model: the system prompt, the worked examples as earlier turns (each answered
        in the output schema's JSON), then the request. Also returns the nearest example's sentence, which an
        opening must stay close to ("" when no example applies). The drafter and `outreach llm train` both
        build their chats here, so the model is trained on exactly what it is later asked."""
        messages = [{"role": "system", "content": self.render("system", **values)}]
        pattern = ""
        for shot in self.shots(values["reasons"]):
            # The examples speak of the customer's product: a small model copies what it is shown, and
            # copying another product's name would be a false claim.
            def ours(text: str, shot: dict = shot) -> str:
                return text.replace(shot["product"], product)

            reasons = [ours(r) for r in shot["reasons"]]
            example = {**values, "product": {"name": product}, "reasons": reasons, "quotes": []}
            # The short form on every channel: measured, the 135M model reproduces a short sentence faithfully
            # and wanders off a long one (0 of 31 long openings stayed close to their example).
            pattern = ours(shot.get("short", shot["opening"]))
            messages += [{"role": "user", "content": self.render("user", **example)},
                         {"role": "assistant", "content": json.dumps({"opening": pattern, "facts_used": reasons[:1]})}]
        # `pattern` is now the nearest example, shown last.
        messages.append({"role": "user", "content": self.render("user", **values)})
        return messages, pattern

    def render(self, part: str, **values: Any) -> str:
        try:
            return ENV.from_string(getattr(self, part)).render(**values).strip()
        except Exception as exc:  # an undefined variable or a broken template: name the file
            raise PromptError(f"prompt {self.mode}.{part}: {exc}") from None
