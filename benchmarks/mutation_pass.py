"""A small mutation pass over rules, estimators and exit policies: does a wrong formula fail its tests?

Each mutant changes one operator or constant in one file (``MUTANTS``: file, the exact text, its
replacement, the test files that cover it). For each, the repository is copied to a temporary
folder, the one change is made there, and the covering tests run (``pytest -x -q``, doctests of the
mutated module included). A mutant is *caught* when the tests fail, *survived* when they pass. The
working tree is never modified. Results go to ``--out`` (REPORT.md and mutants.json).

First the covering tests run once unmutated (the baseline: they must pass). Command (about 15 CPU-minutes):

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
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from locallearn.io import write_json, write_text

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One change of one operator or constant, and the tests meant to catch it."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


POLICIES, RISK, CALIBRATION = "tests/test_exits_policies.py", "tests/test_exits_risk.py", "tests/test_exits_calibration.py"
GROUND_TRUTH, ESTIMATORS, HSIC_PAPER = "tests/test_info_groundtruth.py", "tests/test_info_estimators.py", "tests/test_info_hsic_paper.py"
BIO = ("tests/test_bio_rules.py", "tests/test_paper_recipe.py")

#: file -> (its covering tests, [(what the mutant does, the exact text, its replacement), ...])
_GROUPS: dict[str, tuple[tuple[str, ...], list[tuple[str, str, str]]]] = {
    "locallearn/exits/policies/patience.py": ((POLICIES,), [
        ("patience count not reset when the prediction changes", "run[k - 1] + 1, 0.0)", "run[k - 1] + 1, run[k - 1])"),
    ]),
    "locallearn/exits/risk.py": ((RISK,), [
        ("Learn-then-Test without fixed-sequence testing (continue past a rejected threshold)",
         "        if p > epsilon:\n            break", "        if p > epsilon:\n            continue"),
        ("risk_controlled records only the testing half as seen", "[chosen] * (val.n_exits - 1), seen,",
         "[chosen] * (val.n_exits - 1), val,"),
        ("binomial p-value at n - 1 samples", "binom.cdf(losses, val.n_samples, max_drop)",
         "binom.cdf(losses, val.n_samples - 1, max_drop)"),
    ]),
    "locallearn/exits/calibrate.py": ((CALIBRATION,), [
        ("target accuracy: strict inequality with a margin", "a >= goal - 1e-12", "a > goal + 1e-3"),
        ("target accuracy: a margin below the goal", "a >= goal - 1e-12", "a >= goal - 1e-3"),
    ]),
    "locallearn/exits/confidence.py": ((POLICIES,), [
        ("max-prob sureness from the logits' max, not the softmax's", "torch.softmax(logits, dim=-1).amax(-1)", "logits.amax(-1)"),
        ("margin: top-1 plus top-2", "top[..., 0] - top[..., 1]", "top[..., 0] + top[..., 1]"),
        ("entropy not normalised by log C", "entropy / torch.log(torch.tensor(float(logits.shape[-1])))", "entropy"),
    ]),
    "locallearn/exits/conformal.py": (("tests/test_conformal_risk.py",), [
        ("conformal risk control: bound without B / (n + 1)", "n / (n + 1) * monotone.mean(dim=1) + bound / (n + 1)",
         "n / (n + 1) * monotone.mean(dim=1)"),
        ("conformal risk control: losses not monotonised", "torch.cummax(losses.double(), dim=0).values", "losses.double()"),
        ("conformal risk control: plain mean risk, no n / (n + 1)", "n / (n + 1) * monotone.mean(dim=1) + bound / (n + 1)",
         "monotone.mean(dim=1) + bound / (n + 1)"),
    ]),
    "locallearn/rules/forward_gradient.py": (("tests/test_forward_gradient.py",), [
        ("forward gradient per example: no 1/N for the batch mean", "total / (samples * len(z))", "total / samples"),
        ("forward gradient per example: one directional derivative shared by the batch",
         "total += directional.reshape(-1, *([1] * (z.dim() - 1))) * u", "total += directional.sum() * u"),
    ]),
    "locallearn/rules/forward_forward.py": (("tests/test_forward_forward.py",), [
        ("Forward-Forward threshold a quarter of the units", 'THRESHOLDS = {"units": 1.0,', 'THRESHOLDS = {"units": 0.25,'),
        ("Forward-Forward goodness as the mean square", "return h.flatten(1).pow(2).sum(1)", "return h.flatten(1).pow(2).mean(1)"),
    ]),
    "locallearn/rules/infopro.py": (("tests/test_infopro.py",), [
        ("SupCon without the T / T_base factor", "-(temperature / base_temperature) * mean_log_prob.mean()", "-mean_log_prob.mean()"),
        ("InfoPro: reconstruction and supervised weights swapped", "aux.lambda_recon * recon + aux.lambda_sup * supervised",
         "aux.lambda_sup * recon + aux.lambda_recon * supervised"),
    ]),
    "locallearn/heads.py": (("tests/test_infopro.py", "tests/test_paper_recipe.py"), [
        ("DGL head pre-pools to half, not a quarter", "math.ceil(h.shape[-2] / 4)", "math.ceil(h.shape[-2] / 2)"),
        ("linear head: zero_weight leaves nn.Linear's init", "            nn.init.zeros_(self.linear.weight)", "            pass"),
    ]),
    "locallearn/rules/predsim.py": (BIO, [
        ("similarity matrix without centring the rows", "F.normalize(x - x.mean(dim=1, keepdim=True), dim=1)", "F.normalize(x, dim=1)"),
        ("predsim: beta weighs the prediction term",
         "torch.lerp(pred, F.mse_loss(similarity_matrix(features), target), self.beta)",
         "torch.lerp(pred, F.mse_loss(similarity_matrix(features), target), 1 - self.beta)"),
    ]),
    "locallearn/rules/auglocal.py": (("tests/test_auglocal.py",), [
        ("auglocal pyramid: depth without the + i c / (L - 2) term",
         "round(depth * (1 - i * pyramid_coeff / span) + i * pyramid_coeff / span)", "round(depth * (1 - i * pyramid_coeff / span))"),
        ("auglocal sampling: floor for round", "[round(index + (num_stages - index - 1) / depth * m)",
         "[int(index + (num_stages - index - 1) / depth * m)"),
        ("auglocal classifier: BatchNorm1d at every depth", "norm = [nn.BatchNorm1d(width)] if depth <= 1 else []",
         "norm = [nn.BatchNorm1d(width)]"),
    ]),
    "locallearn/rules/dtp.py": (("tests/test_dtp.py",), [
        ("dtp without the difference correction (plain target propagation)", "return h_below + inverse(h_hat) - inverse(h)",
         "return inverse(h_hat)"),
        ("dtp top target stepped up the loss gradient", "h_hat = outputs[-1] - self.eta * grad", "h_hat = outputs[-1] + self.eta * grad"),
        ("dtp top target from the summed loss whatever the reduction (the authors' NLL is the batch mean)",
         "F.cross_entropy(above[-1].head(top), y, reduction=self.reduction)",
         'F.cross_entropy(above[-1].head(top), y, reduction="sum")'),
    ]),
    "locallearn/rules/ib.py": (("tests/test_ib.py",), [
        ("HSIC bottleneck: label term added, not subtracted", "hsic_tensor(t, x.flatten(1), **kw) - self.lambda_y",
         "hsic_tensor(t, x.flatten(1), **kw) + self.lambda_y"),
    ]),
    "locallearn/info/hsic.py": ((ESTIMATORS, HSIC_PAPER), [
        ("HSIC divided by n^2, not (n - 1)^2", "return cross / (n - 1) ** 2", "return cross / n ** 2"),
        ("HSIC authors' median: sigma^2 taken as sigma", "return 2.0 * max(sigma, 1e-2) ** 2", "return 2.0 * max(sigma, 1e-2)"),
    ]),
    "locallearn/info/ksg.py": ((GROUND_TRUTH, "tests/test_info_ksg_ties.py"), [
        ("KSG: psi(k + 1) for psi(k)", "digamma(n) + digamma(k) -", "digamma(n) + digamma(k + 1) -"),
    ]),
    "locallearn/info/kde.py": ((GROUND_TRUTH, ESTIMATORS), [
        ("KDE upper bound with the Bhattacharyya factor", '_FACTOR = {"upper": 2.0,', '_FACTOR = {"upper": 4.0,'),
    ]),
    "locallearn/schedules/freezeout.py": (("tests/test_freezeout.py",), [
        ("FreezeOut: cosine over 2 t_i", "math.cos(math.pi * t / t_i)", "math.cos(math.pi * t / (2 * t_i))"),
    ]),
}
MUTANTS = tuple(Mutant(name, path, old, new, tests) for path, (tests, rows) in _GROUPS.items() for name, old, new in rows)


def run_tests(workdir: Path, paths: list[str], timeout_s: int) -> tuple[int | None, str, float]:
    """``pytest -x -q`` (doctests included) on ``paths`` in ``workdir``: (exit code or None on timeout, its last
    line, the CPU seconds it used)."""
    # addopts cleared so that one -q leaves pytest's summary ("N passed in S s") as the last line
    command = [sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-x", "-p", "no:cacheprovider", "--doctest-modules", *paths]
    env = {**os.environ, "PYTHONPATH": str(workdir), "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout_s)
        code, tail = done.returncode, (done.stdout.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        code, tail = None, f"no result in {timeout_s} s"
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return code, tail, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def outcome_of(code: int | None) -> str:
    """pytest's exit code -> the mutant's fate: 0 survived, 1 (tests failed) caught, no result: timeout,
    anything else (collection or usage error) error, which is not counted as caught."""
    return {0: "survived", 1: "caught", None: "timeout"}.get(code, "error")


def run_mutant(mutant: Mutant, workdir: Path, timeout_s: int) -> dict:
    """Apply ``mutant`` in ``workdir`` (a copy of the repository), run its tests, undo it."""
    target = workdir / mutant.path
    original = target.read_text()
    if original.count(mutant.old) != 1:
        raise ValueError(f"{mutant.name}: the text to mutate occurs {original.count(mutant.old)} times in {mutant.path}; expected once.")
    target.write_text(original.replace(mutant.old, mutant.new))
    start = time.perf_counter()
    try:
        code, tail, cpu = run_tests(workdir, [mutant.path, *mutant.tests], timeout_s)
    finally:
        target.write_text(original)
    return {"name": mutant.name, "file": mutant.path, "old": mutant.old, "new": mutant.new, "tests": list(mutant.tests),
            "outcome": outcome_of(code), "pytest": tail, "seconds": round(time.perf_counter() - start, 1),
            "cpu_seconds": round(cpu, 1)}


def report(rows: list[dict], command: str, baseline: dict) -> str:
    """REPORT.md: the baseline, the counts, then one line per mutant."""
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("caught", "survived", "timeout", "error")}
    cpu_min = (baseline["cpu_seconds"] + sum(r["cpu_seconds"] for r in rows)) / 60
    lines = [
        "# Mutation pass: rules, estimators, exit policies",
        "",
        f"Command: `{command}` ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; shared 2-core machine,"
        f" load {os.getloadavg()[0]:.1f} at the end; {cpu_min:.1f} CPU-minutes in all). Each mutant changes one operator"
        " or constant; its covering tests (and the mutated module's doctests) run on a copy of the repository. A"
        " mutant is caught when a test fails (pytest exit 1); a collection error would be listed as error, not caught.",
        "",
        f"Baseline (every covering test and doctest, unmutated): {baseline['pytest']} ({baseline['cpu_seconds']} CPU s).",
        "",
        f"**{len(rows)} mutants tried, {counts['caught']} caught, {counts['survived']} survived"
        + "".join(f", {counts[k]} {k}" for k in ("timeout", "error") if counts[k]) + ".**",
        "",
        "| mutant | file | outcome | tests | pytest's last line | CPU s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['name']} | `{r['file']}` | **{r['outcome']}** | {', '.join(r['tests'])} | {r['pytest'].replace('|', '/')} "
              f"| {r['cpu_seconds']} |" for r in rows]
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
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        workdir = Path(tmp) / "repo"
        shutil.copytree(ROOT, workdir, ignore=shutil.ignore_patterns(".git", "results", "__pycache__", "*.egg-info"))
        command = "python benchmarks/mutation_pass.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
        covering = sorted({p for m in chosen for p in (m.path, *m.tests)})
        code, tail, cpu = run_tests(workdir, covering, args.timeout * 4)
        baseline = {"paths": covering, "pytest": tail, "cpu_seconds": round(cpu, 1), "exit_code": code}
        if code != 0:
            raise SystemExit(f"The covering tests fail without any mutant ({tail}); fix them before a mutation pass.")
        for mutant in chosen:
            rows.append(run_mutant(mutant, workdir, args.timeout))
            print(f"{rows[-1]['outcome']:>8}  {mutant.name}  ({rows[-1]['cpu_seconds']} CPU s)", flush=True)
            # after every mutant (atomically), so a cut-short pass keeps its rows
            write_json(out / "mutants.json", {"command": command, "baseline": baseline, "mutants": rows})
            write_text(out / "REPORT.md", report(rows, command, baseline) + ("" if len(rows) == len(chosen) else
                       f"\n(pass cut short: {len(rows)} of {len(chosen)} mutants run)\n"))
    return 0 if all(r["outcome"] == "caught" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
