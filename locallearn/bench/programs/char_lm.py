"""A character language model with an exit after every block (shared unembedding) on Debian's fortunes-min text:
validation bits per character of every exit for e2e, joint (LayerSkip's early-exit loss) and local; measured
tokens/s of self-speculative decoding against full-model greedy decoding with a KV cache (and whether the
outputs are token for token the same); CALM-style per-token exits at a threshold calibrated on validation
prompts, with their tokens/s and consistency with full decoding on other validation prompts.

Command (the committed setting): ``python -m benchmarks char_lm``. The corpus is the three files of Debian's
``fortunes-min`` (``apt-get install -y fortunes-min``), its sha256 recorded; the last 10 % is the validation
text. Calibration prompts come from the first half of the validation text, evaluation prompts from the second.
Timing: one torch thread, batch 1 (one sequence), the methods taking turns prompt by prompt, each method's
fastest of ``--rounds`` passes kept.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from locallearn import lm, models
from locallearn.provenance import load_average
from locallearn.bench.programs.early_exit import take_lock

TITLE = "Character LM on fortunes (CPU): e2e, joint (LayerSkip), local; self-speculative decoding; CALM exits"
DESCRIPTION = ("A decoder-only character LM with an exit after every block sharing the unembedding: bits per "
               "character per exit, tokens/s of self-speculative vs full KV-cached greedy decoding, CALM exits")


def _prompts(corpus: lm.Corpus, half: int, count: int, length: int) -> list[torch.Tensor]:
    val = corpus.part("val")
    middle = len(val) // 2
    part = val[:middle] if half == 0 else val[middle:]
    step = max(length, (len(part) - length) // count)
    return [part[i : i + length] for i in range(0, step * count, step)][:count]


def _timed(methods: dict[str, Callable[[torch.Tensor], Any]], prompts: list[torch.Tensor], rounds: int) -> tuple[dict[str, float], dict[str, list]]:
    """Fastest total seconds of each method over the prompts (methods in turn per prompt), and its outputs."""
    best = dict.fromkeys(methods, float("inf"))
    outputs: dict[str, list] = {}
    for _ in range(rounds):
        total = dict.fromkeys(methods, 0.0)
        outs: dict[str, list] = {name: [] for name in methods}
        for prompt in prompts:
            for name, fn in methods.items():
                start = time.perf_counter()
                outs[name].append(fn(prompt))
                total[name] += time.perf_counter() - start
        for name in methods:
            best[name] = min(best[name], total[name])
        outputs = outs
    return best, outputs


def run_cell(cell: dict[str, Any], corpus: lm.Corpus) -> dict[str, Any]:
    torch.manual_seed(cell["seed"])
    net = models.build("char-lm", (cell["context"],), corpus.vocab_size, dim=cell["dim"], depth=cell["depth"], heads=cell["heads"])
    cpu, wall = time.thread_time(), time.perf_counter()
    history = lm.train_lm(net, corpus, cell["rule"], steps=cell["steps"], batch_size=cell["batch_size"],
                          context=cell["context"], lr=cell["lr"], seed=cell["seed"])
    record: dict[str, Any] = {"rule": cell["rule"], "seed": cell["seed"], "train_cpu_s": time.thread_time() - cpu,
                              "train_wall_s": time.perf_counter() - wall, "final_train_losses": history[-1]}
    net.eval()
    record["val_bits_per_char"] = lm.bits_per_char(net, corpus.part("val"), context=cell["context"])
    print(f"{cell['rule']}: val bits/char {[round(b, 3) for b in record['val_bits_per_char']]}", flush=True)
    new, length = cell["new_tokens"], cell["prompt_length"]
    evaluation = _prompts(corpus, 1, cell["eval_prompts"], length)
    methods: dict[str, Callable[[torch.Tensor], Any]] = {
        "full, KV cache": lambda p: lm.greedy(net, p, new),
        "full, no cache": lambda p: lm.greedy(net, p, new, cache=False),
    }
    for exit in cell["draft_exits"]:
        methods[f"speculative exit {exit} draft {cell['draft']}"] = (
            lambda p, e=exit: lm.speculative(net, p, new, exit=e, draft=cell["draft"]))
    calibration = lm.calibrate_calm(net, _prompts(corpus, 0, cell["calibration_prompts"], length), new,
                                    delta=cell["delta"], epsilon=cell["epsilon"])
    methods["CALM"] = lambda p: lm.calm(net, p, new, threshold=calibration.threshold)
    seconds, outputs = _timed(methods, evaluation, cell["rounds"])
    full = outputs["full, KV cache"]
    tokens = new * len(evaluation)
    record["decoding"] = {}
    for name, s in seconds.items():
        entry: dict[str, Any] = {"tokens_per_s": tokens / s, "speedup_vs_full_kv": seconds["full, KV cache"] / s}
        ids = [o[0] if isinstance(o, tuple) else o for o in outputs[name]]
        entry["identical_to_full_greedy"] = all(torch.equal(a, b) for a, b in zip(ids, full))
        if name.startswith("speculative"):
            stats = [o[1] for o in outputs[name]]
            entry["acceptance"] = sum(s.accepted for s in stats) / sum(s.drafted for s in stats)
        if name == "CALM":
            entry["consistency"] = 1 - statistics.mean(lm.inconsistency(a, b) for a, b in zip(ids, full))
            exits = torch.cat([o[1] for o in outputs[name]])
            entry["mean_stages_run"] = float(exits.double().mean()) + 1
            entry["exit_histogram"] = torch.bincount(exits, minlength=cell["depth"]).tolist()
        record["decoding"][name] = entry
        print(f"  {name}: {entry}", flush=True)
    record["calm_calibration"] = {"threshold": calibration.threshold, "tested": calibration.tested}
    return record


def report(records: list[dict], args: argparse.Namespace, out: Path) -> list[str]:
    cell = records[0]["cell"]
    k = len(records[0]["val_bits_per_char"])
    lines = [
        f"Corpus: {records[0]['corpus']} ({records[0]['corpus_chars']} characters, vocabulary {records[0]['vocab_size']}, "
        f"sha256 `{records[0]['corpus_sha256']}`); the last 10 % is the validation text. Model: {cell['depth']} causal "
        f"pre-norm blocks of width {cell['dim']} ({cell['heads']} heads), context {cell['context']}, one exit per block, "
        f"all exits sharing one unembedding. Training: {cell['steps']} steps of {cell['batch_size']} random windows, "
        f"Adam lr {cell['lr']} with cosine decay, clip 1, one torch thread, seed {cell['seed']}. The machine was shared "
        "(1-minute load before / after: " + ", ".join(f"{r['load_average_before_after'][0][0]:.1f} / "
                                                   f"{r['load_average_before_after'][1][0]:.1f}" for r in records) + ").", "",
        "## Validation bits per character, every exit", "",
        "| rule | " + " | ".join(f"exit {i + 1}" for i in range(k)) + " | training CPU s |", "|---|" + "---|" * (k + 1),
    ]
    for r in records:
        lines.append(f"| {r['rule']} | " + " | ".join(f"{b:.3f}" for b in r["val_bits_per_char"]) + f" | {r['train_cpu_s']:.0f} |")
    lines += ["", f"## Decoding, batch 1: {cell['eval_prompts']} validation prompts of {cell['prompt_length']} characters, "
              f"{cell['new_tokens']} new tokens each", "",
              f"CALM's threshold is calibrated on {cell['calibration_prompts']} other validation prompts for mean "
              f"inconsistency <= {cell['delta']} with probability >= {1 - cell['epsilon']:.2f} (Learn-then-Test, Hoeffding); "
              "consistency = fraction of generated tokens equal to the full model's greedy tokens, position by position.", "",
              "| rule | method | tokens/s | speed-up vs full (KV cache) | identical to full greedy | acceptance | CALM threshold / consistency / stages run |",
              "|---|---|---|---|---|---|---|"]
    for r in records:
        for name, e in r["decoding"].items():
            calm = (f"{r['calm_calibration']['threshold']} / {e['consistency']:.3f} / {e['mean_stages_run']:.2f}"
                    if name == "CALM" else "")
            acceptance = f"{e['acceptance']:.3f}" if "acceptance" in e else ""
            lines.append(f"| {r['rule']} | {name} | {e['tokens_per_s']:.0f} | {e['speedup_vs_full_kv']:.2f}x | "
                         f"{e['identical_to_full_greedy']} | {acceptance} | {calm} |")
    lines += ["", "Every number: [cells.json](cells.json).", ""]
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", nargs="+", default=list(lm.LM_RULES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--prompt-length", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=48)
    p.add_argument("--eval-prompts", type=int, default=40)
    p.add_argument("--calibration-prompts", type=int, default=100)
    p.add_argument("--delta", type=float, default=0.2, help="CALM: tolerated mean inconsistency")
    p.add_argument("--epsilon", type=float, default=0.1, help="CALM: allowed probability of exceeding delta")
    p.add_argument("--draft-exits", type=int, nargs="+", default=[1, 2], help="stages of the speculative draft")
    p.add_argument("--draft", type=int, default=4, help="tokens drafted per verification")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--corpus-dir", default=str(lm.corpus.FORTUNES_DIR))
    p.add_argument("--lock", default="/tmp/locallearn-bench.lock", help="the benchmarks' common lock file")
    p.add_argument("--lock-wait", type=float, default=20, help="seconds to wait for the lock before measuring anyway")


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    keys = ("seed", "dim", "depth", "heads", "context", "steps", "batch_size", "lr", "prompt_length", "new_tokens",
            "eval_prompts", "calibration_prompts", "delta", "epsilon", "draft_exits", "draft", "rounds")
    return [{"rule": rule, **{k: getattr(args, k) for k in keys}} for rule in args.rules]


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    corpus = lm.Corpus.from_text(lm.fortunes(args.corpus_dir), name="fortunes-min")
    for cell in todo:
        lock = take_lock(args.lock, args.lock_wait)
        try:
            before = load_average()
            record = run_cell(cell, corpus)
            add(cell, {**record, "corpus": corpus.name, "corpus_sha256": corpus.sha256, "corpus_chars": len(corpus.text),
                       "vocab_size": corpus.vocab_size, "lock_taken": lock is not None,
                       "load_average_before_after": [before, load_average()]})
        finally:
            if lock is not None:
                lock.close()
