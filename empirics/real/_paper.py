"""The paper's reported real-data numbers (Section 4 and Appendix E), to print beside ours.

Copied from ``../shared/PAPER_RESULTS.md`` (facts of the paper: accuracies in percent,
mean and standard error over 5 trials, one NVIDIA H200). Keys are the row labels of
:data:`empirics.real._run.ROW_LABELS`.

* :data:`TABLE1` -- vision, CIFAR-10, MLP-Mixer depth 1 width 512, test task (8, 9): the
  best held-out test-task accuracy across fine-tuning epochs, averaged over trials.
* :data:`TABLE2` -- language, ConvAI2, RoBERTa-base, LoRA rank 8: hits@1 per test persona
  ``T1..T10`` and their average, from the last fine-tuning epoch.
* :data:`TABLE3` -- language, average hits@1 by LoRA rank (LoRA rows only).
"""
from __future__ import annotations

__all__ = ["SOURCE", "TABLE1", "TABLE2", "TABLE3", "TABLE1_METRIC", "TABLE2_METRIC", "paper_cell"]

SOURCE = "Block et al., Provable Meta-Learning with Low-Rank Adaptations (NeurIPS 2025), Tables 1-3"
TABLE1_METRIC = "best test-task accuracy over fine-tuning epochs (%)"
TABLE2_METRIC = "hits@1 after the last fine-tuning epoch (%)"

#: row label -> (mean, standard error), percent.
TABLE1 = {
    "LoRA-ML": (86.09, 0.35),
    "SR + LoRA": (85.29, 0.17),
    "Reptile + LoRA": (81.30, 0.42),
    "Last-Layer-ML": (83.90, 0.17),
    "SR + Last-Layer": (81.16, 0.22),
    "Reptile + Last-Layer": (72.55, 0.39),
}

_T2 = {
    "LoRA-ML": ([57, 41, 51, 50, 51, 30, 66, 47, 43, 38], [2, 4, 4, 4, 4, 2, 5, 4, 4, 2], (47.4, 1.9)),
    "SR + LoRA": ([59, 31, 50, 40, 24, 20, 41, 36, 23, 26], [5, 4, 7, 4, 5, 2, 10, 2, 5, 6], (35.0, 4.1)),
    "Reptile + LoRA": ([45, 29, 35, 36, 19, 21, 28, 29, 21, 21], [7, 5, 6, 2, 6, 3, 10, 7, 5, 7], (28.4, 5.0)),
    "Last-Layer-ML": ([55, 27, 51, 44, 36, 25, 55, 43, 33, 34], [2, 5, 5, 2, 4, 4, 4, 5, 4, 4], (40.2, 1.5)),
    "SR + Last-Layer": ([41, 9, 29, 36, 28, 15, 31, 24, 15, 17], [4, 5, 3, 5, 8, 4, 8, 5, 6, 6], (24.5, 4.2)),
    "Reptile + Last-Layer": ([35, 13, 18, 29, 19, 18, 15, 17, 15, 16], [6, 4, 3, 3, 9, 4, 9, 5, 6, 4], (19.4, 4.3)),
}
#: row label -> {"per_persona": [(mean, se)] * 10 (T1..T10), "average": (mean, se)}, percent.
TABLE2 = {row: {"per_persona": list(zip(m, s)), "average": avg} for row, (m, s, avg) in _T2.items()}

#: LoRA rank -> row label -> (mean, se), percent.
TABLE3 = {
    1: {"LoRA-ML": (44.7, 0.8), "SR + LoRA": (36.3, 4.1), "Reptile + LoRA": (26.6, 5.8)},
    4: {"LoRA-ML": (48.6, 1.6), "SR + LoRA": (35.5, 4.3), "Reptile + LoRA": (27.7, 5.3)},
    8: {"LoRA-ML": (47.4, 1.9), "SR + LoRA": (35.0, 4.1), "Reptile + LoRA": (28.4, 5.0)},
    16: {"LoRA-ML": (48.2, 1.5), "SR + LoRA": (37.1, 4.1), "Reptile + LoRA": (27.8, 5.9)},
}


def paper_cell(value, digits: int = 2) -> str:
    """``mean ± se`` of a paper entry in percent with ``digits`` decimals (the paper prints
    Table 1 with 2, Tables 2-3 averages with 1 and per-persona cells with 0); ``n/a`` if absent."""
    if value is None:
        return "n/a"
    mean, se = value
    return f"{mean:.{digits}f} ± {se:.{digits}f}"
