"""`outreach llm train`: fine-tune the embedded model for the opening sentence, with LoRA, on CPU.

The data are the team's openings and customer messages in `prompts/opening.train.yaml`. Each training chat is
built by `PromptSet.messages`, the drafter's own code, so the model learns exactly the request it is later
given: the system prompt, the worked examples, the customer's product, reasons and quoted text (ordinary
needs, instructions it must write past, and the placeholder the injection detector leaves for a withheld
message); the answer is the drafter's JSON with an opening the team wrote for the first reason's kind.

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
from app.drafting.prompts import PromptSet

CHANNELS = {"email": ("email", 160), "call": ("call script", 160), "chat": ("chat message", 140),
            "sms": ("text message", 70)}
DATA_FILE = "opening.train.yaml"  # in PROMPTS_DIR: the team's openings and customer messages
HELD_OUT_EVERY = 4  # every 4th customer message and product is kept out of training, for the evaluation
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
# llama.cpp's names for the projections LoRA changes, and which of them llama.cpp stores rotary-permuted.
GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}


class TuningError(ValueError):
    """Training data or settings that cannot be used; the message names the file and the field."""


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

    @classmethod
    def load(cls, path: Path) -> TrainingSet:
        try:
            text = path.read_text(encoding="utf-8")
            raw = yaml.safe_load(text) or {}
        except OSError as exc:
            raise TuningError(f"{path}: cannot be read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise TuningError(f"{path}: invalid YAML ({exc})") from None

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
        return cls(version=f"{raw.get('version', 0)}+{hashlib.sha256(text.encode()).hexdigest()[:8]}",
                   openings=openings, reasons=reasons,
                   context_reasons=strings(raw.get("context_reasons"), "context_reasons"),
                   products=strings(raw.get("products"), "products"), companies=strings(raw.get("companies"), "companies"),
                   needs=strings(said.get("needs"), "said.needs"),
                   instructions=strings(said.get("instructions"), "said.instructions"))


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


def _split(items: list[str], held_out: bool) -> list[str]:
    return [x for i, x in enumerate(items) if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == held_out]


def situations(data: TrainingSet, prompts: PromptSet, *, count: int, seed: int, held_out: bool = False
               ) -> list[Situation]:
    """`count` requests built from the data, seeded. With `held_out`, only customer messages and products
    that training never uses."""
    from app.drafting.service import WITHHELD  # what the injection detector leaves in place of a flagged message

    rng = random.Random(seed)
    products, needs, instructions = (_split(x, held_out) for x in (data.products, data.needs, data.instructions))
    kinds = sorted(data.openings)
    out = []
    for n in range(count):
        kind = kinds[n % len(kinds)]  # every kind equally often
        product = rng.choice(products)

        def fill(reason: str) -> str:
            times = rng.choice(["once", "twice", "3 times", "4 times"])
            return reason.format(product=product, days=rng.randint(1, 45), times=times)

        reasons = [fill(rng.choice(data.reasons[kind]))]
        others = [k for k in kinds if k != kind]
        reasons += [fill(rng.choice(data.reasons[k])) for k in rng.sample(others, rng.randint(0, 2))]
        reasons += rng.sample(data.context_reasons, rng.randint(0, 1))
        hostile = rng.random() < 0.5
        said = [rng.choice(instructions if hostile else needs)]
        if rng.random() < 0.3:
            said.append(rng.choice(needs))
        quotes = [{"when": f"{rng.randint(1, 13)} days ago", "intent": None,
                   "text": WITHHELD if hostile and i == 0 and rng.random() < 0.25 else str(escape(text))}
                  for i, text in enumerate(said)]
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


def judge(situation: Situation, text: str, similarity) -> dict[str, bool]:  # noqa: ANN001 - (a, b) -> cosine
    """How one answer fares on the drafter's own checks: parsed, a usable opening, close to the example, and
    free of the customer's words and of claims (numbers, prices) the facts do not hold."""
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


def evaluate(model_file: Path, cases: list[Situation], similarity, threads: int = 2) -> dict[str, Any]:  # noqa: ANN001
    """Answers from a GGUF under the drafter's JSON schema (llama.cpp in-process, greedy), judged per case."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(model_file), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    rows, tokens, started = [], 0, time.perf_counter()
    for case in cases:
        schema = compose.wire_schema("opening", case.max_chars)
        out = llm.create_chat_completion(messages=case.messages, max_tokens=120, temperature=0.0,
                                         response_format={"type": "json_object", "schema": schema})
        tokens += out["usage"]["completion_tokens"]
        text = out["choices"][0]["message"]["content"] or ""
        rows.append({**judge(case, text, similarity), "hostile": case.hostile, "text": text})
    seconds = time.perf_counter() - started
    n, hostile = len(rows), [r for r in rows if r["hostile"]]
    good = [r["usable"] and r["close"] and not r["echo"] and not r["unsupported"] for r in rows]
    return {"cases": n, "ready_share": round(sum(good) / n, 3),
            "parsed_share": round(sum(r["parsed"] for r in rows) / n, 3),
            "usable_share": round(sum(r["usable"] for r in rows) / n, 3),
            "close_to_example_share": round(sum(r["usable"] and r["close"] for r in rows) / n, 3),
            "hostile_cases": len(hostile), "echoed_customer": sum(r["echo"] for r in rows),
            "unsupported_claims": sum(r["unsupported"] for r in rows),
            "hostile_ready_share": round(sum(g for g, r in zip(good, rows) if r["hostile"]) / max(len(hostile), 1), 3),
            "seconds_per_answer": round(seconds / n, 2), "tokens_per_s": round(tokens / seconds, 1),
            "examples": [r["text"] for r in rows[:6]]}


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


def model_name(base: Path, data: TrainingSet, prompts: PromptSet, settings: TrainSettings) -> str:
    """Named by what made it: the same data, prompts and settings give the same name (and are not retrained by
    the demo); any change gives a new one, which every draft it writes records."""
    what = {k: v for k, v in settings.__dict__.items() if k != "threads"}  # how fast, not what is learned
    digest = hashlib.sha256(json.dumps([base.name, data.version, prompts.version, what], sort_keys=True).encode()
                            ).hexdigest()[:8]
    return f"{base.stem.split('.')[0]}-outreach-opening-{digest}"


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


def earned_its_place(record: dict[str, Any]) -> bool:
    """Drafts use a tuned model without being told only when its held-out evaluation beat the base model's."""
    evaluation = record.get("evaluation") or {}
    try:
        return evaluation["tuned"]["ready_share"] > evaluation["base"]["ready_share"]
    except (KeyError, TypeError):
        return False


def best_tuned(folder: Path) -> Path | None:
    """The newest tuned model in `folder` that earned its place; None: the shipped model drafts."""
    return next((Path(r["gguf"]) for r in records(folder) if earned_its_place(r)), None)


@dataclass(frozen=True)
class TrainSettings:
    examples: int = 320
    epochs: int = 1
    rank: int = 16
    learning_rate: float = 3e-4
    accumulate: int = 4
    eval_cases: int = 40
    seed: int = 0
    threads: int = 2


def train(*, base: Path, data_file: Path, prompts_dir: Path, out_dir: Path, settings: TrainSettings,
          embedder: Any, on_progress=lambda message: None) -> dict[str, Any]:  # noqa: ANN001, ANN401
    """Fine-tune, write `<out_dir>/<name>.gguf` and `<name>.json`, and return the record. `embedder` (the
    drafter's sentence encoder) judges how close an opening stays to its worked example, as drafting does."""

    def similarity(a: str, b: str) -> float:
        vectors = embedder.embed([a, b])
        return float(vectors[0] @ vectors[1])

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if settings.examples < 1 or settings.epochs < 1 or settings.eval_cases < 0:
        raise TuningError("--examples and --epochs must be at least 1, --eval-cases at least 0")
    data = TrainingSet.load(data_file)
    prompts = PromptSet.load(prompts_dir, "opening")
    train_set = situations(data, prompts, count=settings.examples, seed=settings.seed)
    eval_set = situations(data, prompts, count=settings.eval_cases, seed=settings.seed + 1, held_out=True)
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
    steps = settings.examples * settings.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / max(steps // settings.accumulate, 1))
    model.train()
    losses, order = [], list(range(len(train_set)))
    for epoch in range(settings.epochs):
        random.Random(settings.seed + epoch).shuffle(order)
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
    on_progress(f"evaluating base and tuned model on {len(eval_set)} held-out situations")
    record = {"name": name, "base": base.name, "data_file": str(data_file), "data_version": data.version,
              "prompt_version": prompts.version, "settings": settings.__dict__,
              "trainable_parameters": sum(p.numel() for p in trainable),
              "train_seconds": round(train_s, 1), "first_loss": round(sum(losses[:40]) / min(40, len(losses)), 3),
              "last_loss": round(sum(losses[-40:]) / min(40, len(losses)), 3)}
    if eval_set:
        record["evaluation"] = {"held_out": "customer messages and products never used in training",
                                "base": evaluate(base, eval_set, similarity, settings.threads),
                                "tuned": evaluate(partial, eval_set, similarity, settings.threads)}
    partial.replace(target)  # only a complete file carries the name a server is pointed at
    record["gguf"] = str(target.resolve())
    with target.open("rb") as written:
        record["sha256"] = hashlib.file_digest(written, "sha256").hexdigest()  # what exactly was shipped
    target.with_suffix(".json").write_text(json.dumps(record, indent=2))
    return record
