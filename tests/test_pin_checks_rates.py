"""Labels of the SR-vs-LoRA-ML rate check (issue 16, item 8: a survivor of the cosmic-ray
sample of ``theory/_checks_rates.py``).

``check_rates`` compares the LoRA-ML fine-tuning error with Lemma 1 at the rank the theory
needs: Cor 2 at T = 2 (rank 3k, the O(k,k) family), Cor 4 at T >= 3 (rank k, Thm 3.3).
Each case must name the corollary and rank that apply to its T.
"""
from __future__ import annotations

import numpy as np

from theory._checks_rates import check_rates, lora_ml_needed_rank


def test_rate_cases_name_the_corollary_of_their_T():
    d, k = 10, 1
    res = check_rates(np.random.default_rng(0), d=d, k=k, Ts=(2, 3), reps=20)
    named = [c.label for c in res.cases if "E||E_ML||^2 / (sigma^2" in c.label]
    assert len(named) == 2
    for T, label in zip((2, 3), named):
        assert label.startswith(f"T={T}: {'Cor 2' if T == 2 else 'Cor 4'} ")
        assert f"k'={int(lora_ml_needed_rank(d=d, T=T, k=k))})" in label
    assert int(lora_ml_needed_rank(d=d, T=2, k=k)) == 3 * k and int(lora_ml_needed_rank(d=d, T=3, k=k)) == k
