"""``make gpu-check`` without a GPU: it says so in one line and runs nothing (on a GPU it runs tests/test_cuda.py)."""

from __future__ import annotations

import pytest
import torch

from locallearn.bench import gpu_check


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_gpu_check_without_a_gpu_says_so_and_runs_nothing(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "report")]) == 2
    assert "no CUDA GPU here" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_the_cuda_marker_is_registered(pytestconfig):
    assert any(m.startswith("cuda:") for m in pytestconfig.getini("markers"))
