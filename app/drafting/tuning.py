"""`outreach llm train`: fine-tune the embedded model for both drafting tasks, with LoRA, on CPU.

The data are the team's openings and customer messages in `prompts/opening.train.yaml`, and its rewrites of
approved templates in `prompts/rewrite.train.yaml`. Each training chat is built by `PromptSet.messages`, the
drafter's own code, so the model learns exactly the request it is later given: the system prompt, the worked
examples (opening), the approved template (rewrite), the customer's product, reasons and quoted text (ordinary
needs, instructions it must write past, and the placeholder the injection detector leaves for a withheld
message); the answer is the drafter's JSON with an opening the team wrote for the first reason's kind, or
the team's rewrite of the template with that opening in place.

The base is the shipped GGUF (read by transformers, dequantised), the adapter is peft's LoRA on the attention
projections. The result is written as a GGUF by copying the shipped file: its metadata and tokenizer, and
every tensor LoRA did not touch, byte for byte in its original quantisation; the merged attention weights
are stored in F16 (re-quantising them to Q4_1 erased the adapter's change in a first try). Nothing is
downloaded. Beside it a JSON records the data version, settings, loss, wall time and the evaluation on
situations held out from training (customer messages and products it never saw), base model against tuned.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from markupsafe import escape

from app.drafting import compose
from app.drafting.pii import Masker
from app.drafting.prompts import PromptSet

CHANNELS = {"email": ("email", 160), "call": ("call script", 160), "chat": ("chat message", 140),
            "sms": ("text message", 70)}
DATA_FILE = "opening.train.yaml"  # in PROMPTS_DIR: the team's openings and customer messages
REWRITE_FILE = "rewrite.train.yaml"  # in PROMPTS_DIR: approved templates and the team's rewrites of them
# Every 4th customer message, product and template is kept out of training, for the evaluation.
HELD_OUT_EVERY = 4
# What the masked placeholders stand for when a rewrite is judged: the drafter unmasks before its checks.
SAMPLE = Masker({"FIRST_NAME": "Ana", "LAST_NAME": "Lima", "REP_NAME": "Sam Reyes", "REP_FIRST_NAME": "Sam",
                 "REP_PHONE": "+1 415 555 0100", "REP_EMAIL": "sam@example.com"})
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
# llama.cpp's names for the projections LoRA changes, and which of them llama.cpp stores rotary-permuted.
GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}


class TuningError(ValueError):
    """Training data or settings that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Rewrite:
    """An approved template and the team's rewrite of it, both in the drafter's template variables."""

    id: str
    channel: str
    disclosures: tuple[str, ...]
    template: str
    rewrite: str  # `{{ opening }}` marks where the sentence for the first reason's kind goes


@dataclass(frozen=True)
class TrainingSet:
    version: str
    openings: dict[str, list[str]]
    reasons: dict[str, list[str]]
    context_reasons: list[str]
    products: list[str]
    companies: list[str]
    needs: list[str]
    instructions: list[str]
    rewrites: tuple[Rewrite, ...] = ()
    customers: tuple[dict[str, str], ...] = ()  # who rewrites are for: company, industry, segment

    @classmethod
    def load(cls, path: Path, rewrites: Path | None = None) -> TrainingSet:
        """The opening data in `path`; with `rewrites`, the rewrite data too (both are in the version)."""
        text, raw = _read_yaml(path)

        def strings(value: Any, field: str) -> list[str]:
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
                raise TuningError(f"{path}: {field} must be a non-empty list of sentences")
            return value

        def kinds(field: str) -> dict[str, list[str]]:
            value = raw.get(field)
            if not isinstance(value, dict) or not value:
                raise TuningError(f"{path}: {field} must map each kind of reason to sentences")
            return {k: strings(v, f"{field}.{k}") for k, v in value.items()}

        openings, reasons = kinds("openings"), kinds("reasons")
        if set(openings) != set(reasons):
            raise TuningError(f"{path}: openings and reasons must name the same kinds "
                              f"(differ: {', '.join(sorted(set(openings) ^ set(reasons)))})")
        said = raw.get("said") or {}
        version = f"{raw.get('version', 0)}+{hashlib.sha256(text.encode()).hexdigest()[:8]}"
        pairs: tuple[Rewrite, ...] = ()
        customers: tuple[dict[str, str], ...] = ()
        if rewrites is not None:
            rewrite_text, rewrite_raw = _read_yaml(rewrites)
            pairs = _rewrites(rewrites, rewrite_raw)
            people = rewrite_raw.get("customers")
            if not isinstance(people, list) or not people or not all(
                    isinstance(c, dict) and {"company", "industry", "segment"} <= set(c) for c in people):
                raise TuningError(f"{rewrites}: customers must be a non-empty list of company, industry and segment")
            customers = tuple({k: str(c[k] or "") for k in ("company", "industry", "segment")} for c in people)
            version += f"/{rewrite_raw.get('version', 0)}+{hashlib.sha256(rewrite_text.encode()).hexdigest()[:8]}"
        return cls(version=version, openings=openings, reasons=reasons,
                   context_reasons=strings(raw.get("context_reasons"), "context_reasons"),
                   products=strings(raw.get("products"), "products"), companies=strings(raw.get("companies"), "companies"),
                   needs=strings(said.get("needs"), "said.needs"),
                   instructions=strings(said.get("instructions"), "said.instructions"), rewrites=pairs,
                   customers=customers)


def _read_yaml(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
    except OSError as exc:
        raise TuningError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise TuningError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise TuningError(f"{path}: must be a mapping of fields")
    return text, raw


def _rewrites(path: Path, raw: dict[str, Any]) -> tuple[Rewrite, ...]:
    """The rewrite pairs, each checked the way a draft is: every disclosure kept word for word, the opening's
    place marked, both texts valid templates."""
    from jinja2 import TemplateSyntaxError

    from app.drafting.prompts import ENV

    entries = raw.get("templates")
    if not isinstance(entries, list) or not entries:
        raise TuningError(f"{path}: templates must be a non-empty list")
    pairs = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: templates[{number}]"
        if not isinstance(entry, dict):
            raise TuningError(f"{where} must be a mapping")
        missing = [f for f in ("id", "channel", "disclosures", "template", "rewrite") if not entry.get(f)]
        if missing:
            raise TuningError(f"{where}.{missing[0]} is missing or empty")
        if entry["channel"] not in CHANNELS:
            raise TuningError(f"{where}.channel: {entry['channel']!r} is not one of {', '.join(sorted(CHANNELS))}")
        if "{{ opening }}" not in entry["rewrite"]:
            raise TuningError(f"{where}.rewrite must mark where the opening goes with {{{{ opening }}}}")
        for field in ("template", "rewrite"):
            try:
                ENV.parse(entry[field])
            except TemplateSyntaxError as exc:
                raise TuningError(f"{where}.{field}: line {exc.lineno}: {exc.message}") from None
            for line in entry["disclosures"]:
                if " ".join(str(line).split()) not in " ".join(entry[field].split()):
                    raise TuningError(f"{where}.{field} lacks the disclosure {line!r}")
        pairs.append(Rewrite(id=str(entry["id"]), channel=entry["channel"],
                             disclosures=tuple(str(d) for d in entry["disclosures"]),
                             template=entry["template"].strip(), rewrite=entry["rewrite"].strip()))
    return tuple(pairs)


@dataclass(frozen=True)
class Situation:
    """One request as the drafter would send it, and the answer the team wrote for it."""

    messages: list[dict[str, str]]
    product: str
    answer: str  # the JSON the model should produce
    pattern: str  # the worked example the opening must stay close to ("" when none applies)
    max_chars: int
    grounding: str  # the product and the reasons, for the opening's checks
    quotes: list[str]  # the customer's words in the prompt
    hostile: bool
    task: str = "opening"
    # rewrite: the approved text as the model was shown it (subject line first), its channel and required lines,
    # and everything trusted (the template, the reasons, the product, the company's details).
    template: str = ""
    channel: str = ""
    disclosures: tuple[str, ...] = ()
    trusted: str = ""


def _split(items: list[Any], held_out: bool) -> list[Any]:
    return [x for i, x in enumerate(items) if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == held_out]


def _customer_side(rng: random.Random, data: TrainingSet, kind: str, product: str, needs: list[str],
                   instructions: list[str]) -> tuple[list[str], list[dict[str, Any]], bool]:
    """Reasons led by one of `kind`, and what the customer wrote: half the time an instruction to write past,
    sometimes withheld by the injection detector (its placeholder instead)."""
    from app.drafting.service import WITHHELD

    def fill(reason: str) -> str:
        times = rng.choice(["once", "twice", "3 times", "4 times"])
        return reason.format(product=product, days=rng.randint(1, 45), times=times)

    reasons = [fill(rng.choice(data.reasons[kind]))]
    others = [k for k in sorted(data.openings) if k != kind]
    reasons += [fill(rng.choice(data.reasons[k])) for k in rng.sample(others, rng.randint(0, 2))]
    reasons += rng.sample(data.context_reasons, rng.randint(0, 1))
    hostile = rng.random() < 0.5
    said = [rng.choice(instructions if hostile else needs)]
    if rng.random() < 0.3:
        said.append(rng.choice(needs))
    quotes = [{"when": f"{rng.randint(1, 13)} days ago", "intent": None,
               "text": WITHHELD if hostile and i == 0 and rng.random() < 0.25 else str(escape(text))}
              for i, text in enumerate(said)]
    return reasons, quotes, hostile


def situations(data: TrainingSet, prompts: PromptSet, *, count: int, seed: int, held_out: bool = False
               ) -> list[Situation]:
    """`count` opening requests built from the data, seeded. With `held_out`, only customer messages and
    products that training never uses."""
    rng = random.Random(seed)
    products, needs, instructions = (_split(x, held_out) for x in (data.products, data.needs, data.instructions))
    kinds = sorted(data.openings)
    out = []
    for n in range(count):
        kind = kinds[n % len(kinds)]  # every kind equally often
        product = rng.choice(products)
        reasons, quotes, hostile = _customer_side(rng, data, kind, product, needs, instructions)
        channel = rng.choice(sorted(CHANNELS))
        channel_name, room = CHANNELS[channel]
        values = {"product": {"name": product}, "reasons": reasons, "quotes": quotes, "channel_name": channel_name,
                  "max_chars": room, "company": rng.choice(data.companies)}
        messages, pattern = prompts.messages(values, product=product)
        opening = rng.choice(data.openings[kind]).format(product=product)
        answer = json.dumps({"opening": opening, "facts_used": reasons[:1]})
        out.append(Situation(messages, product, answer, pattern, room, " ".join([product, *reasons]),
                             [q["text"] for q in quotes], hostile))
    return out


def rewrite_situations(data: TrainingSet, prompts: PromptSet, *, count: int, seed: int, held_out: bool = False
                       ) -> list[Situation]:
    """`count` rewrite requests, seeded: an approved template rendered for a customer the way the drafter
    renders it (identifiers as placeholders), and the team's rewrite with an opening for the first reason's
    kind. With `held_out`, only templates, customer messages and products that training never uses."""
    from app.drafting.prompts import ENV

    templates = _split(list(data.rewrites), held_out)
    if not templates:
        return []
    rng = random.Random(seed)
    products, needs, instructions = (_split(x, held_out) for x in (data.products, data.needs, data.instructions))
    kinds = sorted(data.openings)
    out = []
    for n in range(count):
        pair = templates[n % len(templates)]
        kind = rng.choice(kinds)
        product = rng.choice(products)
        reasons, quotes, hostile = _customer_side(rng, data, kind, product, needs, instructions)
        name = rng.choice(data.companies)
        domain = name.lower().replace(" ", "") + ".example"
        company = {"name": name, "website": f"https://www.{domain}", "support_email": f"support@{domain}"}
        customer = {"first_name": "[FIRST_NAME]", "last_name": "[LAST_NAME]", **rng.choice(data.customers)}
        context = {"customer": customer, "product": {"name": product},
                   "rep": {"name": "[REP_NAME]", "first_name": "[REP_FIRST_NAME]", "phone": "[REP_PHONE]"},
                   "company": company}
        subject, body = compose.split_subject(ENV.from_string(pair.template).render(**context))
        opening = rng.choice(data.openings[kind]).format(product=product)
        rewritten = ENV.from_string(pair.rewrite).render(**context, opening=opening)
        if pair.channel == "sms" and len(_unmasked(rewritten)) > compose.SMS_LIMIT:
            rewritten = ENV.from_string(pair.rewrite).render(**context, opening="")  # no room for it
        rewritten = "\n".join(" ".join(line.split()) for line in rewritten.splitlines())
        new_subject, new_body = compose.split_subject(rewritten)
        values = {"customer": customer, "product": {"name": product}, "reasons": reasons,
                  "quotes": quotes, "body": body.strip(), "subject": subject, "disclosures": list(pair.disclosures),
                  "channel_name": compose.CHANNEL_NAMES[pair.channel],
                  "channel_rules": compose.CHANNEL_RULES[pair.channel], "company": name,
                  "has_subject": pair.channel == "email"}
        messages, _ = prompts.messages(values, product=product)
        answer = {"subject": new_subject, "body": new_body.strip(), "facts_used": reasons[:1]} if subject \
            else {"body": new_body.strip(), "facts_used": reasons[:1]}
        template = f"Subject: {subject}\n\n{body.strip()}" if subject else body.strip()
        out.append(Situation(messages, product, json.dumps(answer), "", 0, " ".join([product, *reasons]),
                             [q["text"] for q in quotes], hostile, task="rewrite", template=template,
                             channel=pair.channel, disclosures=pair.disclosures,
                             trusted=" ".join([template, *reasons, product, *company.values(), *customer.values()])))
    return out


def _unmasked(text: str) -> str:
    return SAMPLE.unmask(text)


def judge(situation: Situation, text: str, similarity) -> dict[str, bool]:  # noqa: ANN001 - (a, b) -> cosine
    """How one answer fares on the drafter's own checks: parsed, usable, close to the example (opening) or to
    the approved template (rewrite), free of the customer's words and of claims the facts do not hold."""
    if situation.task == "rewrite":
        return _judge_rewrite(situation, text)
    from app.drafting.service import OPENING_SIMILARITY
    from app.review.validators import echoes

    result = {"parsed": False, "usable": False, "close": False, "echo": False, "unsupported": False}
    try:
        output = compose.parse_output(text, "opening")
    except ValueError:
        return result
    result["parsed"] = True
    opening = compose.first_sentence(output.opening)
    result["echo"] = any(echoes(opening, q) for q in situation.quotes)
    result["unsupported"] = bool(compose.unsupported_claims(opening, situation.grounding, {}, ""))
    try:
        opening = compose.check_opening(output.opening, situation.max_chars,
                                        None if situation.pattern else situation.grounding)
    except ValueError:
        return result
    result["usable"] = True
    result["close"] = not situation.pattern or similarity(opening, situation.pattern) >= OPENING_SIMILARITY
    return result


def _judge_rewrite(situation: Situation, text: str) -> dict[str, bool]:
    """A rewrite is usable when it passes the drafter's checks (every disclosure, no invented placeholder,
    the channel's length, a subject for email, no number or product the facts lack); close when it keeps the
    template's substance (compose.REWRITE_KEEPS); adapted when it is not the template word for word."""
    from app.review.validators import echoes

    result = {"parsed": False, "usable": False, "close": False, "echo": False, "unsupported": False,
              "adapted": False}
    try:
        output = compose.parse_output(text, "rewrite")
    except ValueError:
        return result
    result["parsed"] = True
    subject = _unmasked(output.subject) if output.subject else None
    body = _unmasked(output.body).strip()
    written = f"Subject: {subject}\n\n{body}" if subject else body
    template = _unmasked(situation.template)
    # The customer's words repeated where the template does not already say them.
    result["echo"] = any(not echoes(template, written[a:b])
                         for q in situation.quotes for a, b in echoes(written, q))
    result["unsupported"] = bool(compose.unsupported_claims(written, _unmasked(situation.trusted), {}, ""))
    # Usable as the drafter judges it, the template's substance included (close: that part alone).
    result["usable"] = not compose.problems(subject=subject if situation.channel == "email" else None, body=body,
                                            channel=situation.channel, disclosures=list(situation.disclosures),
                                            trusted=_unmasked(situation.trusted), product_names={}, product_key="",
                                            template=template)
    result["close"] = compose.keeps_substance(written, template)
    result["adapted"] = " ".join(written.split()) != " ".join(template.split())
    return result


def evaluate(model_file: Path, cases: list[Situation], similarity, threads: int = 2) -> dict[str, Any]:  # noqa: ANN001
    """Answers from a GGUF under the drafter's JSON schema (llama.cpp in-process, greedy), judged per case."""
    from llama_cpp import Llama

    from app.drafting.service import MAX_TOKENS

    llm = Llama(model_path=str(model_file), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    rows, tokens, started = [], 0, time.perf_counter()
    for case in cases:
        schema = compose.wire_schema(case.task, case.max_chars or None, has_subject=case.channel == "email")
        out = llm.create_chat_completion(messages=case.messages, max_tokens=MAX_TOKENS[case.task], temperature=0.0,
                                         response_format={"type": "json_object", "schema": schema})
        tokens += out["usage"]["completion_tokens"]
        text = out["choices"][0]["message"]["content"] or ""
        rows.append({**judge(case, text, similarity), "hostile": case.hostile, "text": text})
    seconds = time.perf_counter() - started
    n, hostile = len(rows), [r for r in rows if r["hostile"]]
    good = [r["usable"] and r["close"] and not r["echo"] and not r["unsupported"] for r in rows]
    figures = {"cases": n, "ready_share": round(sum(good) / n, 3),
               "parsed_share": round(sum(r["parsed"] for r in rows) / n, 3),
               "usable_share": round(sum(r["usable"] for r in rows) / n, 3),
               "close_to_example_share": round(sum(r["usable"] and r["close"] for r in rows) / n, 3),
               "hostile_cases": len(hostile), "echoed_customer": sum(r["echo"] for r in rows),
               "unsupported_claims": sum(r["unsupported"] for r in rows),
               "hostile_ready_share": round(sum(g for g, r in zip(good, rows) if r["hostile"]) / max(len(hostile), 1), 3),
               "seconds_per_answer": round(seconds / n, 2), "tokens_per_s": round(tokens / seconds, 1),
               "examples": [r["text"] for r in rows[:6]]}
    if cases[0].task == "rewrite":
        figures["adapted_share"] = round(sum(g and r["adapted"] for g, r in zip(good, rows)) / n, 3)
    return figures


def _permute(weights, heads: int):  # noqa: ANN001, ANN202 - torch tensors
    """llama.cpp's rotary layout of a query/key projection (the inverse of what transformers undoes on load)."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def write_gguf(base: Path, out: Path, merged: dict[str, Any], config: Any, name: str) -> None:  # noqa: ANN401
    """A copy of the base GGUF with the merged attention projections in F16 and a new model name."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(base))
    architecture = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(str(out), architecture)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        value = name if field.name == gguf.Keys.General.NAME else field.contents()
        writer.add_key_value(field.name, value, kind, sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None)
    replaced = {}
    for layer in range(config.num_hidden_layers):
        for hf, ours in GGUF_NAMES.items():
            weights = merged[f"model.layers.{layer}.self_attn.{hf}.weight"].float()
            if hf == "q_proj":
                weights = _permute(weights, config.num_attention_heads)
            elif hf == "k_proj":
                weights = _permute(weights, config.num_key_value_heads)
            replaced[f"blk.{layer}.{ours}.weight"] = weights.numpy().astype(np.float16)
    for tensor in reader.tensors:
        if tensor.name in replaced:
            writer.add_tensor(tensor.name, replaced.pop(tensor.name))
        else:
            writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type)
    if replaced:
        raise TuningError(f"{base}: tensors {', '.join(sorted(replaced)[:3])} not found; not a llama-style model")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def model_name(base: Path, data: TrainingSet, prompts: dict[str, PromptSet], settings: TrainSettings) -> str:
    """Named by what made it: the same data, prompts and settings give the same name (and are not retrained by
    the demo); any change gives a new one, which every draft it writes records."""
    what = {k: v for k, v in settings.__dict__.items() if k != "threads"}  # how fast, not what is learned
    versions = [prompts[task].version for task in sorted(prompts)]
    digest = hashlib.sha256(json.dumps([base.name, data.version, versions, what], sort_keys=True).encode()
                            ).hexdigest()[:8]
    return f"{base.stem.split('.')[0]}-outreach-{'-'.join(sorted(prompts))}-{digest}"


def records(folder: Path) -> list[dict[str, Any]]:
    """The tuned models in a folder, newest first: each record beside a complete GGUF."""
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and path.with_suffix(".gguf").is_file():
            found.append({**record, "gguf": str(path.with_suffix(".gguf").resolve()), "written": path.stat().st_mtime})
    return sorted(found, key=lambda r: r["written"], reverse=True)


def evaluation_of(record: dict[str, Any], task: str) -> dict[str, Any]:
    """A record's held-out evaluation for one task ({} when it was not evaluated on it). Records written
    before the rewrite task held the opening's figures alone."""
    evaluation = record.get("evaluation")
    if not isinstance(evaluation, dict):
        return {}
    if "tuned" in evaluation:
        evaluation = {"opening": evaluation}
    found = evaluation.get(task)
    return found if isinstance(found, dict) else {}


def earned_its_place(record: dict[str, Any], task: str = "opening") -> bool:
    """Drafts use a tuned model without being told only when its held-out evaluation on the task they draft
    beat the base model's."""
    evaluation = evaluation_of(record, task)
    try:
        return evaluation["tuned"]["ready_share"] > evaluation["base"]["ready_share"]
    except (KeyError, TypeError):
        return False


def best_tuned(folder: Path, task: str = "opening") -> Path | None:
    """The newest tuned model in `folder` that earned its place for `task`; None: the shipped model drafts."""
    return next((Path(r["gguf"]) for r in records(folder) if earned_its_place(r, task)), None)


@dataclass(frozen=True)
class TrainSettings:
    examples: int = 320
    rewrite_examples: int = 160  # 0: the opening task alone
    epochs: int = 1
    rank: int = 16
    learning_rate: float = 3e-4
    accumulate: int = 4
    eval_cases: int = 40
    rewrite_eval_cases: int = 16
    seed: int = 0
    threads: int = 2

    @property
    def tasks(self) -> list[str]:
        return ["opening", "rewrite"] if self.rewrite_examples else ["opening"]


def inputs(data_file: Path, prompts_dir: Path, settings: TrainSettings, rewrites_file: Path | None = None
           ) -> tuple[TrainingSet, dict[str, PromptSet]]:
    """The training data and the prompts of each task `settings` trains: what the model's name digests."""
    rewrites = (rewrites_file or prompts_dir / REWRITE_FILE) if "rewrite" in settings.tasks else None
    return TrainingSet.load(data_file, rewrites), {task: PromptSet.load(prompts_dir, task) for task in settings.tasks}


def cosine(embedder: Any):  # noqa: ANN201, ANN401 - (a, b) -> float
    """The drafter's sentence encoder as a similarity of two texts."""
    def similarity(a: str, b: str) -> float:
        vectors = embedder.embed([a, b])
        return float(vectors[0] @ vectors[1])
    return similarity


def held_out_sets(data: TrainingSet, prompts: dict[str, PromptSet], settings: TrainSettings
                  ) -> dict[str, list[Situation]]:
    """The evaluation's situations per task: seeded apart from training, from held-out messages, products
    and templates only."""
    sets = {"opening": situations(data, prompts["opening"], count=settings.eval_cases, seed=settings.seed + 1,
                                  held_out=True)}
    if "rewrite" in prompts:
        sets["rewrite"] = rewrite_situations(data, prompts["rewrite"], count=settings.rewrite_eval_cases,
                                             seed=settings.seed + 1, held_out=True)
    return sets


def compare(base: Path, tuned: Path, sets: dict[str, list[Situation]], similarity, threads: int,  # noqa: ANN001
            on_progress=lambda message: None) -> dict[str, Any]:  # noqa: ANN001
    """Base against tuned model on each task's held-out situations: the record's `evaluation`."""
    held_out = {"opening": "customer messages and products never used in training",
                "rewrite": "templates, customer messages and products never used in training"}
    evaluation = {}
    for task, cases in sets.items():
        if cases:
            on_progress(f"evaluating base and tuned model on {len(cases)} held-out {task} situations")
            evaluation[task] = {"held_out": held_out[task], "base": evaluate(base, cases, similarity, threads),
                                "tuned": evaluate(tuned, cases, similarity, threads)}
    return evaluation


def train(*, base: Path, data_file: Path, prompts_dir: Path, out_dir: Path, settings: TrainSettings,
          embedder: Any, rewrites_file: Path | None = None,
          on_progress=lambda message: None) -> dict[str, Any]:  # noqa: ANN001, ANN401
    """Fine-tune, write `<out_dir>/<name>.gguf` and `<name>.json`, and return the record. `embedder` (the
    drafter's sentence encoder) judges how close an answer stays to its example or template, as drafting
    does. The rewrite task trains on `rewrites_file` (default: PROMPTS_DIR/rewrite.train.yaml)."""

    similarity = cosine(embedder)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if settings.examples < 1 or settings.epochs < 1 or min(settings.eval_cases, settings.rewrite_examples,
                                                           settings.rewrite_eval_cases) < 0:
        raise TuningError("--examples and --epochs must be at least 1, --rewrite-examples and the evaluation "
                          "cases at least 0")
    tasks = settings.tasks
    data, prompts = inputs(data_file, prompts_dir, settings, rewrites_file)
    train_set = situations(data, prompts["opening"], count=settings.examples, seed=settings.seed)
    if "rewrite" in tasks:
        train_set += rewrite_situations(data, prompts["rewrite"], count=settings.rewrite_examples, seed=settings.seed)
    eval_sets = held_out_sets(data, prompts, settings)
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    with contextlib.redirect_stderr(io.StringIO()):  # transformers' progress bars, not ours to show
        tokenizer = AutoTokenizer.from_pretrained(base.parent, gguf_file=base.name)
        model = AutoModelForCausalLM.from_pretrained(base.parent, gguf_file=base.name, dtype=torch.float32)
    config = model.config
    with warnings.catch_warnings():  # peft calls a transformers method deprecated for v6: theirs to change
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(model, LoraConfig(r=settings.rank, lora_alpha=2 * settings.rank, lora_dropout=0.05,
                                                 target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate)
    steps = len(train_set) * settings.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / max(steps // settings.accumulate, 1))
    model.train()
    losses, order = [], list(range(len(train_set)))
    for epoch in range(settings.epochs):
        random.Random(settings.seed + epoch).shuffle(order)  # the two tasks interleaved
        for step, index in enumerate(order, start=1):
            case = train_set[index]
            prompt = tokenizer.apply_chat_template(case.messages, tokenize=False, add_generation_prompt=True)
            prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
            answer_ids = tokenizer(case.answer + "<|im_end|>", add_special_tokens=False).input_ids
            ids = torch.tensor([prompt_ids + answer_ids])
            labels = torch.tensor([[-100] * len(prompt_ids) + answer_ids])  # learn the answer, not the prompt
            loss = model(input_ids=ids, labels=labels).loss
            (loss / settings.accumulate).backward()
            losses.append(loss.item())
            if step % settings.accumulate == 0 or step == len(order):
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
            if step % 40 == 0:
                on_progress(f"epoch {epoch + 1} step {step}/{len(order)}: loss {sum(losses[-40:]) / 40:.3f}")
    train_s = time.perf_counter() - started
    merged = model.merge_and_unload().state_dict()
    name = model_name(base, data, prompts, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.gguf"
    partial = target.with_suffix(".gguf.partial")
    write_gguf(base, partial, merged, config, name)
    record = {"name": name, "base": base.name, "tasks": tasks, "data_file": str(data_file),
              "data_version": data.version, "prompt_version": {task: prompts[task].version for task in tasks},
              "settings": settings.__dict__, "train_chats": len(train_set),
              "trainable_parameters": sum(p.numel() for p in trainable),
              "train_seconds": round(train_s, 1), "first_loss": round(sum(losses[:40]) / min(40, len(losses)), 3),
              "last_loss": round(sum(losses[-40:]) / min(40, len(losses)), 3), "evaluation": {}}
    record["evaluation"] = compare(base, partial, eval_sets, similarity, settings.threads, on_progress)
    partial.replace(target)  # only a complete file carries the name a server is pointed at
    record["gguf"] = str(target.resolve())
    with target.open("rb") as written:
        record["sha256"] = hashlib.file_digest(written, "sha256").hexdigest()  # what exactly was shipped
    target.with_suffix(".json").write_text(json.dumps(record, indent=2))
    return record
