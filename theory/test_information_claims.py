"""Fast check of T12 (theory/README.md): the data-processing inequality, as the KSG estimator sees it."""

from __future__ import annotations

from theory import t12_data_processing as t12


def test_first_rise():
    assert t12.first_rise([1.0, 0.9, 0.95], tolerance=0.01) == 3  # I(X;T_3) > I(X;T_2)
    assert t12.first_rise([1.0, 0.9, 0.905], tolerance=0.01) is None


def test_T12_ksg_never_rises_along_a_markov_chain_but_does_without_one():
    for gain in (1.0, 3.0):
        x, ts = t12.noisy_chain(gain=gain, propagate=True)
        values = t12.estimate("ksg", x, ts)
        assert all(b <= a + 0.01 for a, b in zip(values, values[1:])), values
    x, ts = t12.noisy_chain(gain=1.0, propagate=False)  # noise at measurement only: no Markov chain
    values = t12.estimate("ksg", x, ts)
    assert values[3] > values[2] + 0.1, values


def test_T12_gives_each_estimator_its_own_verdict_and_one_that_rises_fails():
    assert t12.verdict_for([None, None]) == "holds"
    assert t12.verdict_for([None, 4]) == "does not hold here"  # one rise on one chain is enough
    chains = {(True, 1.0): t12.noisy_chain(gain=1.0, propagate=True)}
    kde = t12.check_estimator("kde", chains)  # KDE's bound rises from T_3 to T_4 on this chain
    assert kde.verdict == "does not hold here" and kde.table[0]["first_rise_at_layer"] == 4
    ksg = t12.check_estimator("ksg", chains)
    assert ksg.verdict == "holds" and "ksg" in ksg.title
