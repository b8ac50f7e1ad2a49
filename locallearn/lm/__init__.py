"""Language models with an exit after every block: corpus, training (e2e, joint = LayerSkip, local), bits per
character, KV-cached greedy, self-speculative and CALM decoding, CALM's threshold calibration.

Example:
    >>> from locallearn import lm, models
    >>> corpus = lm.Corpus.from_text(lm.generated_text(300), name="generated")
    >>> net = models.build("char-lm", (16,), corpus.vocab_size, dim=16, depth=2, heads=2)
    >>> _ = lm.train_lm(net, corpus, "joint", steps=2, batch_size=4, context=16)
    >>> len(lm.bits_per_char(net, corpus.part("val"), context=16))
    2
"""

from locallearn.lm.calibrate import CalmCalibration, calibrate_calm, hoeffding_p_value, inconsistency
from locallearn.lm.corpus import Corpus, fortunes, generated_text
from locallearn.lm.decode import SpeculativeStats, calm, greedy, softmax_response, speculative
from locallearn.lm.train import LM_RULES, bits_per_char, layerskip_weights, lm_rule, train_lm

__all__ = [
    "LM_RULES", "CalmCalibration", "Corpus", "SpeculativeStats", "bits_per_char", "calibrate_calm", "calm",
    "fortunes", "generated_text", "greedy", "hoeffding_p_value", "inconsistency", "layerskip_weights", "lm_rule",
    "softmax_response", "speculative", "train_lm",
]
