"""empirics.real._protocol's reported numbers pinned: the retraining steps of a stage (the
`retrain_steps` field every CPU Table 1 row states: Reptile's inner steps only, else epochs x
the longest task's batches, times T when each task batch is its own step) and a fine-tuning
entry (its best accuracy is the maximum over epochs, the final accuracy without epochs).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from empirics.real._protocol import finetune_entry, retrain_steps


class _Task:
    def __init__(self, batches):
        self.batches = batches

    def num_batches(self, split):
        assert split == "train"
        return self.batches


def _family(*batches):
    return SimpleNamespace(retrain_tasks=lambda: [_Task(b) for b in batches])


@pytest.mark.parametrize("method, step_per, want", [("lora-ml", "round", 10 * 7), ("sr", "round", 10 * 7),
                                                     ("sr", "batch", 10 * 7 * 3), ("last-layer-ml", "round", 10 * 7)])
def test_retraining_steps_are_epochs_times_the_longest_task_s_batches(method, step_per, want):
    stage = SimpleNamespace(method=method, epochs=10, step_per=step_per, reptile_inner_steps=99)
    assert retrain_steps(stage, _family(5, 7, 6)) == want
    assert type(retrain_steps(stage, _family(5, 7, 6))) is int


def test_reptile_counts_its_inner_steps_only():
    stage = SimpleNamespace(method="reptile", epochs=12, step_per="round", reptile_inner_steps=4)
    assert retrain_steps(stage, _family(5, 7, 6)) == 48


def test_a_finetuning_entry():
    e = finetune_entry("t", 0.5, 0.7, [0.4, 0.9, 0.5], 2.0)
    assert e == {"task": "t", "accuracy": 0.5, "loss": 0.7, "best_accuracy_over_epochs": 0.9,
                 "accuracy_per_epoch": [0.4, 0.9, 0.5], "wall_s": 2.0}
    assert finetune_entry("t", 0.6, 0.1, [], 1)["best_accuracy_over_epochs"] == 0.6


@pytest.mark.parametrize("archive", [None, "mine.tar.xz"])
def test_the_vision_family_reads_the_users_archive_or_else_the_default(monkeypatch, archive):
    """CIFAR-10 without --data-root: the archive the user named, or the default one when none
    was named (the loader is replaced by a recorder; no data is read)."""
    import dataclasses

    from empirics.real import _cifar, _protocol, _run

    seen = {}

    class Stop(Exception):
        pass

    def loader(data_root, *, archive, cache, verbose):
        seen["archive"] = archive
        raise Stop

    monkeypatch.setattr(_cifar, "load_cifar10", loader)
    cfg = dataclasses.replace(_run.RunConfig(), dataset="cifar10", data_root=None, archive=archive)
    with pytest.raises(Stop):
        _protocol.build_family(cfg, verbose=False)
    assert seen["archive"] == (archive or _cifar.DEFAULT_ARCHIVE)


@pytest.mark.parametrize("name", ["cifar", "bogus", "CIFAR10", ""])
def test_an_unknown_vision_dataset_is_refused_not_read_as_another(name):
    """Only cifar10, fashion-mnist and random name vision data; any other name (a prefix of
    one, another spelling) is refused before anything is loaded."""
    from empirics.real._protocol import build_family
    from empirics.real._run import VISION_PAPER
    import dataclasses

    cfg = dataclasses.replace(VISION_PAPER, dataset=name, data_root="/nonexistent")
    with pytest.raises(ValueError, match=r"dataset must be cifar10\|fashion-mnist\|random"):
        build_family(cfg, verbose=False)
