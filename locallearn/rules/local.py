"""``local``: layer-wise backprop. Each block learns from the cross-entropy of its own head."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from locallearn.rules.base import RULES, LocalRule, StageOutput


@RULES.register("local")
class LocalCrossEntropy(LocalRule):
    """Cross-entropy of each stage's own head; inputs are detached, so no gradient crosses stages.

    Source: Nøkland & Eidnes, ICML 2019 ('pred', anokland/local-loss); Belilovsky, Eickenberg & Oyallon, ICML 2019 (greedy layer-wise learning).

    Example:
        >>> LocalCrossEntropy().detach_inputs
        True
    """

    source = "Nøkland & Eidnes, ICML 2019 ('pred', anokland/local-loss); Belilovsky, Eickenberg & Oyallon, ICML 2019 (greedy layer-wise learning)"

    detach_inputs = True
    sequence_labels = True  # a language model's next-token labels (B, T)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out.logits, y)
