"""One batch-size default (API, RunSpec, CLI), and no progress bar when the output is not a terminal."""

from __future__ import annotations

import locallearn as ll
from locallearn.cli import build_parser
from locallearn.experiment import RunSpec


def test_one_batch_size_default_for_the_api_the_run_spec_and_the_cli():
    cli = build_parser().parse_args(["train"]).batch_size
    assert ll.TrainConfig().batch_size == RunSpec().batch_size == cli == 32


def test_the_api_repeats_the_cli_run(synthetic, tmp_path, capsys):
    from locallearn.cli import main

    out = tmp_path / "run.json"
    assert main(["train", "--data", "synthetic", "--widths", "16,16", "--epochs", "2", "--out", str(out)]) == 0
    import json

    cli_history = json.loads(out.read_text())["history"]
    ll.seed_everything(0)
    net = ll.build_mlp(synthetic.input_shape, (16, 16), synthetic.num_classes)
    result = ll.train(net, synthetic, rule="local", epochs=2, progress=False)
    assert result.final("test") == cli_history[-1]["test_accuracy"]


def test_no_progress_bar_when_the_output_is_not_a_terminal(synthetic, capsys):
    net = ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes)
    ll.train(net, synthetic, epochs=2, progress=True)  # pytest's captured stderr is not a terminal
    captured = capsys.readouterr()
    assert "it/s" not in captured.err and "%|" not in captured.err
