"""Speed of the llama.cpp build this interpreter imports, on the drafting model and a drafting-sized prompt.

    .venv/bin/python eval/bench_llama_build.py                                  # the installed (AVX2) build
    PYTHONPATH=/path/to/other/build .venv/bin/python eval/bench_llama_build.py  # another build of llama-cpp-python

Run it once per build on an otherwise idle machine and compare: prompt processing (tokens/s over a
~600-token prompt, one generated token), generation (tokens/s, greedy, a fixed number of tokens), and the
text generated (greedy: a build that changes it is suspect). Prints one JSON line with the build's path and
its system info (which SIMD paths it was compiled with).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import llama_cpp
from llama_cpp import Llama

from app.drafting.local import model_path

PROMPT = ("You write the first sentence of a sales message. Facts: the customer viewed Analytics Add-on three "
          "days ago; asked about pricing once in the last 14 days; the team has 14 seats. ") * 12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    llm = Llama(model_path=str(model_path()), n_ctx=2048, n_threads=args.threads, n_threads_batch=args.threads,
                verbose=False, seed=0)
    prompt_tokens = len(llm.tokenize(PROMPT.encode()))
    prompt_speed, generation_speed, text = [], [], ""
    for _ in range(args.runs):
        llm.reset()
        started = time.perf_counter()
        llm.create_completion(PROMPT, max_tokens=1, temperature=0.0)
        prompt_speed.append(prompt_tokens / (time.perf_counter() - started))
        llm.reset()
        short = "Write one friendly sentence about analytics for a sales team:"
        started = time.perf_counter()
        out = llm.create_completion(short, max_tokens=args.tokens, temperature=0.0)
        elapsed = time.perf_counter() - started
        generation_speed.append(out["usage"]["completion_tokens"] / elapsed)
        text = out["choices"][0]["text"]
    print(json.dumps({"build": llama_cpp.__file__, "system_info": llama_cpp.llama_print_system_info().decode(),
                      "prompt_tokens": prompt_tokens, "prompt_tokens_per_s": round(statistics.median(prompt_speed), 1),
                      "generation_tokens_per_s": round(statistics.median(generation_speed), 1),
                      "runs": args.runs, "threads": args.threads, "text": text}))


if __name__ == "__main__":
    main()
