"""The ``pipeline`` schedule: real worker processes on loopback, faults, Ctrl-C, CLI and rules."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import locallearn as ll
from locallearn import cli, rules
from locallearn.rules.local import LocalCrossEntropy
from locallearn.schedules.pipeline import Pipeline, PipelineWorkerError, split_stages

def _pipelines(name: str) -> bool:
    rule = rules.RULES.get(name)
    return not rule.needs_input and rule.transform_batch is rules.LocalRule.transform_batch


LOCAL_RULES = [name for name in rules.names() if rules.RULES.get(name).detach_inputs and _pipelines(name)]
REFUSED_RULES = [name for name in rules.names() if rules.RULES.get(name).detach_inputs and not _pipelines(name)]


class FaultyRule(LocalCrossEntropy):
    """``local``, plus a fault in stage ``stage`` at its ``step``-th update (counted per worker process),
    once the file ``armed`` exists; each process records its pid in ``pids``."""

    def __init__(self, *, stage: int, step: int, fault: str, armed: str, pids: str) -> None:
        self.stage, self.step, self.fault, self.armed, self.pids = stage, step, fault, armed, pids
        self.calls = 0
        self.recorded = False

    def stage_loss(self, out, y):
        if not self.recorded:
            self.recorded = True
            with open(self.pids, "a") as f:
                f.write(f"{os.getpid()}\n")
        if out.index == self.stage and os.path.exists(self.armed):
            self.calls += 1
            if self.calls == self.step:
                if self.fault == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError(f"injected fault at step {self.step}")
        return super().stage_loss(out, y)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _kill_session(process: subprocess.Popen) -> None:
    """Kill whatever is left of a test's child session (the child and anything it started)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _recorded_pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _trainer(data, schedule, *, rule="local", widths=(64, 64), epochs=1, **config):
    ll.seed_everything(0)
    net = ll.build_mlp(data.input_shape, widths, data.num_classes)
    config = ll.TrainConfig(epochs=epochs, batch_size=32, progress=False, **config)
    return ll.Trainer(net, data, rule=rule, schedule=schedule, config=config)


def test_two_workers_train_an_mlp_on_digits(digits):
    trainer = _trainer(digits, Pipeline(workers=2), widths=(128, 128), epochs=8, eval_every=0)
    result = trainer.fit()
    assert result.final("test")[-1] >= 0.90
    record = result.history[-1]
    assert record["worker_stages"] == [[0], [1]]
    assert all(v > 0 for v in record["worker_samples_per_s"])
    assert record["worker_idle_s"][0] == 0.0 and record["worker_idle_s"][1] >= 0.0  # rank 0 never receives
    assert len(record["train_loss"]) == 2
    assert multiprocessing.active_children() == []


def test_without_dropout_the_pipeline_computes_what_simultaneous_does(synthetic):
    """Stage k+1 trains on the output stage k computed before its own update: the simultaneous schedule."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count, so both sides sum in the same order
    try:
        reference = _trainer(synthetic, "simultaneous", widths=(16, 16, 16), epochs=2)
        reference.fit()
    finally:
        torch.set_num_threads(threads)
    mine = _trainer(synthetic, Pipeline(workers=2), widths=(16, 16, 16), epochs=2)
    result = mine.fit()
    assert result.history[-1]["worker_stages"] == [[0, 1], [2]]
    for a, b in zip(reference.net.state_dict().values(), mine.net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(reference.optimizers, mine.optimizers):  # the optimiser states came back too
        torch.testing.assert_close(a.state_dict()["state"], b.state_dict()["state"], rtol=0, atol=0)


@pytest.mark.parametrize("fault", ["raise", "kill"])
def test_a_failing_worker_stops_the_run_with_a_clear_error(synthetic, tmp_path, fault):
    armed, pids = tmp_path / "armed", tmp_path / "pids"
    rule = FaultyRule(stage=1, step=3, fault=fault, armed=str(armed), pids=str(pids))
    checkpoint = tmp_path / "run.pt"

    class Arm(ll.Callback):
        def on_epoch_end(self, trainer, record):
            armed.touch()  # the fault strikes in the second epoch

    trainer = _trainer(synthetic, Pipeline(workers=2, timeout_s=20), rule=rule, epochs=3, checkpoint_path=str(checkpoint))
    trainer.callbacks.append(Arm())
    start = time.monotonic()
    with pytest.raises(PipelineWorkerError) as info:
        trainer.fit()
    assert time.monotonic() - start < 30  # the bound on stopping, not a speed measurement
    message = str(info.value)
    assert "rank 1 (stage 2)" in message and "epoch 2" in message  # stages, epochs and batches numbered from 1
    if fault == "raise":
        assert "batch 3 (compute): RuntimeError: injected fault at step 3" in message
    else:
        assert "killed by signal SIGKILL" in message
    assert multiprocessing.active_children() == []
    recorded = _recorded_pids(pids)
    assert len(recorded) == 4 and all(_gone(pid) for pid in recorded)  # 2 workers x 2 epochs, all reaped
    payload = ll.io.load_checkpoint(checkpoint)
    assert payload["epoch"] == 1  # the last good checkpoint, from the first epoch, survives


@pytest.mark.slow
def test_ctrl_c_stops_every_worker(tmp_path):
    pids = tmp_path / "pids"
    script = textwrap.dedent(
        f"""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even when launched where SIGINT is ignored
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import locallearn as ll
        from test_pipeline import FaultyRule
        ds = ll.data.load("synthetic")
        rule = FaultyRule(stage=1, step=10**9, fault="raise", armed="/nonexistent", pids={str(pids)!r})
        net = ll.build_mlp(ds.input_shape, (16, 16), ds.num_classes)
        schedule = ll.schedules.create("pipeline", workers=2)
        ll.Trainer(net, ds, rule=rule, schedule=schedule, config=ll.TrainConfig(epochs=10**6, progress=False)).fit()
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(_recorded_pids(pids)) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert len(_recorded_pids(pids)) >= 2, "the workers never started"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        left = [pid for pid in _recorded_pids(pids) if not _gone(pid)]  # before the clean-up below
    finally:
        _kill_session(process)
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    assert left == []


@pytest.mark.parametrize("rule", LOCAL_RULES)
def test_every_local_rule_trains_in_the_pipeline(synthetic, rule):
    trainer = _trainer(synthetic, Pipeline(workers=2), rule=rule, widths=(32, 32), epochs=2, eval_every=0)
    before = [p.detach().clone() for p in trainer.net.parameters()]
    result = trainer.fit()
    assert all(torch.isfinite(torch.tensor(v)) for v in result.history[-1]["train_loss"])
    changed = [not torch.equal(a, b) for a, b in zip(before, trainer.net.parameters())]
    assert any(changed[: len(changed) // 2]) and any(changed[len(changed) // 2 :])  # both workers' stages came back
    assert max(result.final("test")) > 1.5 / synthetic.num_classes


@pytest.mark.parametrize("rule", REFUSED_RULES)
def test_rules_that_read_the_input_or_build_their_batches_are_refused_before_any_worker_starts(rule):
    with pytest.raises(ValueError, match="reads the network input at every stage|builds its own batches"):
        Pipeline(workers=2).check(rules.create(rule))


def test_cli_trains_with_the_pipeline(tmp_path, capsys):
    out, checkpoint = tmp_path / "result.json", tmp_path / "run.pt"
    code = cli.main([
        "train", "--data", "digits", "--widths", "64,64", "--epochs", "2", "--schedule", "pipeline",
        "--schedule-opt", "workers=2", "--no-progress", "--out", str(out), "--checkpoint", str(checkpoint),
    ])
    assert code == 0
    assert "exit 1: val" in capsys.readouterr().out
    record = ll.io.read_json(out)["history"][-1]
    assert record["worker_stages"] == [[0], [1]] and len(record["worker_idle_s"]) == 2
    assert ll.io.load_checkpoint(checkpoint)["config"]["schedule"]["workers"] == 2


@pytest.mark.slow
def test_torchrun_gives_the_same_net_as_launching_from_python(tmp_path):
    args = ["train", "--data", "synthetic", "--widths", "16,16", "--epochs", "2", "--schedule", "pipeline", "--no-progress"]
    launched, local = tmp_path / "torchrun.pt", tmp_path / "local.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "locallearn.cli", *args, "--checkpoint", str(launched)]
    done = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            start_new_session=True)
    try:
        stdout, stderr = done.communicate(timeout=120)
    finally:
        _kill_session(done)
    assert done.returncode == 0, stderr[-2000:]
    assert stdout.count("exit 1: val") == 2  # both ranks evaluated the gathered net
    assert cli.main([*args, "--checkpoint", str(local)]) == 0
    a, b = ll.io.load_checkpoint(launched), ll.io.load_checkpoint(local)
    for x, y in zip(a["net"].values(), b["net"].values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert a["history"][-1]["worker_stages"] == [[0], [1]]


def test_bad_input_gets_clear_errors(synthetic):
    with pytest.raises(ValueError, match="asks for 3 workers but the network has only 2 stages"):
        _trainer(synthetic, Pipeline(workers=3))
    with pytest.raises(ValueError, match="'pipeline' schedule .* needs a local rule; rule 'e2e'"):
        _trainer(synthetic, "pipeline", rule="e2e")
    with pytest.raises(ValueError, match="'threads' parameter of Pipeline must be an int >= 1"):
        Pipeline(threads=0)
    with pytest.raises(ValueError, match="'start_method' parameter of Pipeline must be one of"):
        Pipeline(start_method="thread")


def test_split_stages_is_contiguous_and_balanced():
    assert split_stages(4, 2) == [[0, 1], [2, 3]]
    assert split_stages(3, 3) == [[0], [1], [2]]
    assert split_stages(7, 3) == [[0, 1, 2], [3, 4], [5, 6]]


def test_passes_the_schedule_conformance_suite():
    from locallearn.testing import check_schedule

    check_schedule(Pipeline(workers=2))


def test_workers_stuck_before_the_rendezvous_are_named_and_stopped(synthetic, monkeypatch):
    from locallearn.schedules import _pipeline_worker

    monkeypatch.setattr(_pipeline_worker, "_die_with_parent", lambda: time.sleep(3600))  # forked workers inherit it
    trainer = _trainer(synthetic, Pipeline(workers=2, timeout_s=2))
    start = time.monotonic()
    with pytest.raises(PipelineWorkerError, match=r"rank 0 \(stage 1\), 1 \(stage 2\) did not join .* within 2 s"):
        trainer.fit()
    assert time.monotonic() - start < 30
    assert multiprocessing.active_children() == []
