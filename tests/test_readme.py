"""The READMEs' numbers are generated from the committed results, and the README stands on its own."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from locallearn.bench import readme
from locallearn.store import read_store

ROOT = readme.ROOT


def test_readme_blocks_match_the_committed_results():
    stale = readme.stale()
    assert not stale, f"README blocks differ from the committed results: {stale}; run `python -m benchmarks readme`"


def test_every_generated_block_is_used():
    text = "".join((ROOT / name).read_text() for name in readme.READMES)
    for name in readme.BLOCKS:
        assert f"<!-- readme:{name} -->" in text


def test_drift_is_detected_and_repaired(tmp_path):
    for name in readme.READMES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / readme.RESULTS, tmp_path / readme.RESULTS)
    demo = tmp_path / readme.RESULTS / "demo" / "results.json"
    store = read_store(demo)
    store.records[0]["test_accuracy"][-1] /= 10  # one number changes
    store.save()
    assert readme.stale(tmp_path) == ["README.md:demo"]
    assert readme.update(tmp_path) == ["README.md:demo"]
    assert readme.stale(tmp_path) == []


def test_readme_links_stay_inside_the_repository():
    text = (ROOT / "README.md").read_text()
    assert "../" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert not target.startswith(("http:", "https:")), target
        assert (ROOT / target).exists(), f"README links {target}, which is not in the repository"
