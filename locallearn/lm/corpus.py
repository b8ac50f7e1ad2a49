"""Character corpora, offline and reproducible: Debian's ``fortunes-min`` text, or a tiny generated text.

``fortunes()`` reads the three files Debian's ``fortunes-min`` package installs in
``/usr/share/games/fortunes`` (``fortunes``, ``literature``, ``riddles``; ``apt-get install -y
fortunes-min``), joined in that order, and records the text's sha256. ``generated_text`` makes a
small deterministic text for tests. ``Corpus`` holds the character vocabulary (sorted), the ids, and
the cut into a training part and a validation part (the last ``val_fraction`` of the text: no
window of validation text was seen in training).

Example:
    >>> corpus = Corpus.from_text(generated_text(400, seed=0), name="generated")
    >>> corpus.decode(corpus.encode("the cat")) == "the cat", corpus.vocab_size < 30
    (True, True)
    >>> x, y = corpus.windows("train", context=8, batch_size=4, generator=torch.Generator().manual_seed(0))
    >>> x.shape, bool((x[:, 1:] == y[:, :-1]).all())
    (torch.Size([4, 8]), True)
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import torch

FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_FILES = ("fortunes", "literature", "riddles")


def fortunes(folder: str | Path = FORTUNES_DIR) -> str:
    """The text of Debian's ``fortunes-min`` (its three files, joined in a fixed order)."""
    folder = Path(folder)
    missing = [name for name in FORTUNES_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"The fortunes corpus needs {', '.join(missing)} in {folder}; install Debian's text with "
            "`apt-get install -y fortunes-min` (or pass the folder holding those files)."
        )
    return "".join((folder / name).read_text(encoding="utf-8") for name in FORTUNES_FILES)


def generated_text(words: int, *, seed: int = 0) -> str:
    """A small deterministic text of simple sentences (``the cat sees a dog.``), for tests."""
    rng = random.Random(seed)
    nouns, verbs = ("cat", "dog", "bird", "fish"), ("sees", "likes", "chases")
    sentences = []
    while sum(len(s.split()) for s in sentences) < words:
        sentences.append(f"the {rng.choice(nouns)} {rng.choice(verbs)} a {rng.choice(nouns)}.")
    return " ".join(sentences) + "\n"


@dataclass
class Corpus:
    """A text as character ids, its vocabulary, and its train / validation cut."""

    name: str
    text: str
    chars: str
    ids: torch.Tensor
    split_at: int

    @classmethod
    def from_text(cls, text: str, *, name: str, val_fraction: float = 0.1) -> Corpus:
        if not 0 < val_fraction < 1 or len(text) < 4:
            raise ValueError(f"A corpus needs a text of at least 4 characters and 0 < val_fraction < 1; got "
                             f"{len(text)} characters and val_fraction={val_fraction!r}.")
        chars = "".join(sorted(set(text)))
        index = {c: i for i, c in enumerate(chars)}
        ids = torch.tensor([index[c] for c in text], dtype=torch.long)
        return cls(name, text, chars, ids, int(len(text) * (1 - val_fraction)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def sha256(self) -> str:
        """The sha256 of the text (UTF-8), recorded with every result."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ValueError(f"Characters {unknown!r} are not in the corpus {self.name!r}'s vocabulary.")
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def part(self, split: str) -> torch.Tensor:
        """The ids of ``"train"`` or ``"val"``."""
        if split not in ("train", "val"):
            raise ValueError(f"A corpus has splits 'train' and 'val'; got {split!r}.")
        return self.ids[: self.split_at] if split == "train" else self.ids[self.split_at :]

    def windows(self, split: str, *, context: int, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` random windows ``x`` of ``context`` ids and their next characters ``y``."""
        ids = self.part(split)
        if len(ids) <= context:
            raise ValueError(f"The {split} part has {len(ids)} characters; a window needs more than {context}.")
        starts = torch.randint(0, len(ids) - context, (batch_size,), generator=generator)
        rows = starts[:, None] + torch.arange(context + 1)
        chunk = ids[rows]
        return chunk[:, :-1], chunk[:, 1:]
