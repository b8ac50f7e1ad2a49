"""A small mutation pass over rules, estimators and exit policies: does a wrong formula fail its tests?

Each mutant changes one operator or constant in one file (``MUTANTS``: file, the exact text, its
replacement, the test files that cover it). For each, the repository is copied to a temporary
folder, the one change is made there, and the covering tests run (``pytest -x -q``, doctests of the
mutated module included). A mutant is *caught* when the tests fail, *survived* when they pass. The
working tree is never modified. Results go to ``--out`` (REPORT.md and mutants.json).

Command (about 10 minutes on the shared 2-core machine):

    python benchmarks/mutation_pass.py --out benchmarks/results/mutation

Example (the list is well-formed: every mutated text occurs exactly once in its file):
    >>> from pathlib import Path
    >>> root = Path(__file__).resolve().parent.parent
    >>> all((root / m.path).read_text().count(m.old) == 1 for m in MUTANTS)
    True
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from locallearn.compare_report import write_text
from locallearn.io import write_json

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One change of one operator or constant, and the tests meant to catch it."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    Mutant("patience count not reset when the prediction changes", "locallearn/exits/policies/patience.py",
           "run[k - 1] + 1, 0.0)", "run[k - 1] + 1, run[k - 1])", ("tests/test_exits_policies.py",)),
    Mutant("Learn-then-Test without fixed-sequence testing (continue past a rejected threshold)",
           "locallearn/exits/risk.py", "        if p > epsilon:\n            break",
           "        if p > epsilon:\n            continue", ("tests/test_exits_risk.py",)),
    Mutant("risk_controlled records only the testing half as seen", "locallearn/exits/risk.py",
           "[chosen] * (val.n_exits - 1), seen,", "[chosen] * (val.n_exits - 1), val,", ("tests/test_exits_risk.py",)),
    Mutant("binomial p-value at n - 1 samples", "locallearn/exits/risk.py",
           "binom.cdf(losses, val.n_samples, max_drop)", "binom.cdf(losses, val.n_samples - 1, max_drop)",
           ("tests/test_exits_risk.py",)),
    Mutant("target accuracy: strict inequality with a margin", "locallearn/exits/calibrate.py",
           "a >= goal - 1e-12", "a > goal + 1e-3", ("tests/test_exits_calibration.py",)),
    Mutant("max-prob sureness from the logits' max, not the softmax's", "locallearn/exits/confidence.py",
           "torch.softmax(logits, dim=-1).amax(-1)", "logits.amax(-1)", ("tests/test_exits_policies.py",)),
    Mutant("margin: top-1 plus top-2", "locallearn/exits/confidence.py",
           "top[..., 0] - top[..., 1]", "top[..., 0] + top[..., 1]", ("tests/test_exits_policies.py",)),
    Mutant("entropy not normalised by log C", "locallearn/exits/confidence.py",
           "entropy / torch.log(torch.tensor(float(logits.shape[-1])))", "entropy", ("tests/test_exits_policies.py",)),
    Mutant("forward gradient per example: no 1/N for the batch mean", "locallearn/rules/forward_gradient.py",
           "total / (samples * len(z))", "total / samples", ("tests/test_forward_gradient.py",)),
    Mutant("Forward-Forward threshold a quarter of the units", "locallearn/rules/forward_forward.py",
           'THRESHOLDS = {"units": 1.0,', 'THRESHOLDS = {"units": 0.25,', ("tests/test_forward_forward.py",)),
    Mutant("Forward-Forward goodness as the mean square", "locallearn/rules/forward_forward.py",
           "return h.flatten(1).pow(2).sum(1)", "return h.flatten(1).pow(2).mean(1)", ("tests/test_forward_forward.py",)),
    Mutant("SupCon without the T / T_base factor", "locallearn/rules/infopro.py",
           "-(temperature / base_temperature) * mean_log_prob.mean()", "-mean_log_prob.mean()",
           ("tests/test_infopro.py",)),
    Mutant("InfoPro: reconstruction and supervised weights swapped", "locallearn/rules/infopro.py",
           "aux.lambda_recon * recon + aux.lambda_sup * supervised", "aux.lambda_sup * recon + aux.lambda_recon * supervised",
           ("tests/test_infopro.py",)),
    Mutant("DGL head pre-pools to half, not a quarter", "locallearn/heads.py",
           "math.ceil(h.shape[-2] / 4)", "math.ceil(h.shape[-2] / 2)", ("tests/test_infopro.py",)),
    Mutant("similarity matrix without centring the rows", "locallearn/rules/predsim.py",
           "F.normalize(x - x.mean(dim=1, keepdim=True), dim=1)", "F.normalize(x, dim=1)",
           ("tests/test_bio_rules.py", "tests/test_paper_recipe.py")),
    Mutant("predsim: beta weighs the prediction term", "locallearn/rules/predsim.py",
           "torch.lerp(pred, F.mse_loss(similarity_matrix(features), target), self.beta)",
           "torch.lerp(pred, F.mse_loss(similarity_matrix(features), target), 1 - self.beta)",
           ("tests/test_bio_rules.py", "tests/test_paper_recipe.py")),
    Mutant("HSIC bottleneck: label term added, not subtracted", "locallearn/rules/ib.py",
           "hsic_tensor(t, x.flatten(1), **kw) - self.lambda_y", "hsic_tensor(t, x.flatten(1), **kw) + self.lambda_y",
           ("tests/test_ib.py",)),
    Mutant("HSIC divided by n^2, not (n - 1)^2", "locallearn/info/hsic.py",
           "return cross / (n - 1) ** 2", "return cross / n ** 2", ("tests/test_info_estimators.py", "tests/test_info_hsic_paper.py")),
    Mutant("HSIC authors' median: sigma^2 taken as sigma", "locallearn/info/hsic.py",
           "return 2.0 * max(sigma, 1e-2) ** 2", "return 2.0 * max(sigma, 1e-2)", ("tests/test_info_hsic_paper.py",)),
    Mutant("KSG: psi(k + 1) for psi(k)", "locallearn/info/ksg.py",
           "digamma(n) + digamma(k) -", "digamma(n) + digamma(k + 1) -", ("tests/test_info_groundtruth.py", "tests/test_info_ksg_ties.py")),
    Mutant("KDE upper bound with the Bhattacharyya factor", "locallearn/info/kde.py",
           '_FACTOR = {"upper": 2.0,', '_FACTOR = {"upper": 4.0,', ("tests/test_info_groundtruth.py", "tests/test_info_estimators.py")),
    Mutant("FreezeOut: cosine over 2 t_i", "locallearn/schedules/freezeout.py",
           "math.cos(math.pi * t / t_i)", "math.cos(math.pi * t / (2 * t_i))", ("tests/test_freezeout.py",)),
)


def run_mutant(mutant: Mutant, workdir: Path, timeout_s: int) -> dict:
    """Apply ``mutant`` in ``workdir`` (a copy of the repository), run its tests, undo it."""
    target = workdir / mutant.path
    original = target.read_text()
    if original.count(mutant.old) != 1:
        raise ValueError(f"{mutant.name}: the text to mutate occurs {original.count(mutant.old)} times in {mutant.path}; expected once.")
    target.write_text(original.replace(mutant.old, mutant.new))
    start = time.perf_counter()
    try:
        command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--doctest-modules",
                   mutant.path, *mutant.tests]
        env = {**os.environ, "PYTHONPATH": str(workdir), "OMP_NUM_THREADS": "1"}
        try:
            done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout_s)
            outcome = "survived" if done.returncode == 0 else "caught"
            tail = (done.stdout.strip().splitlines() or [""])[-1]
        except subprocess.TimeoutExpired:
            outcome, tail = "timeout", f"no result in {timeout_s} s"
    finally:
        target.write_text(original)
    return {"name": mutant.name, "file": mutant.path, "old": mutant.old, "new": mutant.new, "tests": list(mutant.tests),
            "outcome": outcome, "pytest": tail, "seconds": round(time.perf_counter() - start, 1)}


def report(rows: list[dict], command: str) -> str:
    """REPORT.md: the counts, then one line per mutant."""
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("caught", "survived", "timeout")}
    lines = [
        "# Mutation pass: rules, estimators, exit policies",
        "",
        f"Command: `{command}` ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; shared 2-core machine,"
        f" load {os.getloadavg()[0]:.1f} at the end). Each mutant changes one operator or constant; the covering tests"
        " (and the mutated module's doctests) run on a copy of the repository.",
        "",
        f"**{len(rows)} mutants tried, {counts['caught']} caught, {counts['survived']} survived"
        + (f", {counts['timeout']} timed out" if counts["timeout"] else "") + ".**",
        "",
        "| mutant | file | outcome | tests | pytest's last line | s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['name']} | `{r['file']}` | **{r['outcome']}** | {', '.join(r['tests'])} | {r['pytest'].replace('|', '/')} "
              f"| {r['seconds']} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/mutation", help="folder for REPORT.md and mutants.json")
    parser.add_argument("--only", default="", help="run only mutants whose name contains this text")
    parser.add_argument("--timeout", type=int, default=240, help="seconds allowed for one mutant's tests")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if args.only.lower() in m.name.lower()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        workdir = Path(tmp) / "repo"
        shutil.copytree(ROOT, workdir, ignore=shutil.ignore_patterns(".git", "results", "__pycache__", "*.egg-info"))
        command = "python benchmarks/mutation_pass.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
        for mutant in chosen:
            rows.append(run_mutant(mutant, workdir, args.timeout))
            print(f"{rows[-1]['outcome']:>8}  {mutant.name}  ({rows[-1]['seconds']} s)", flush=True)
            write_json(out / "mutants.json", rows)  # after every mutant (atomically), so a cut-short pass keeps its rows
            write_text(out / "REPORT.md", report(rows, command) + ("" if len(rows) == len(chosen) else
                       f"\n(pass cut short: {len(rows)} of {len(chosen)} mutants run)\n"))
    return 0 if all(r["outcome"] == "caught" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
