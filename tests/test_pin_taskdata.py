"""empirics._taskdata pinned: batches of one epoch (full batch: one, in order, no shuffle;
mini-batches: ceil(n / b), or floor with drop_last on the training split only, training ones in
the generator's permutation, evaluation ones in order), transforms on training batches only, the
split names, and mappings as well as tuples of tensors.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from empirics._taskdata import TaskData  # noqa: E402


def _data(n=10):
    x = torch.arange(n, dtype=torch.float32).view(n, 1)
    return (x, 2 * x)


@pytest.mark.parametrize("n, b, drop, train, other", [(10, 3, False, 4, 4), (10, 3, True, 3, 4), (9, 3, True, 3, 3),
                                                     (9, 3, False, 3, 3), (2, 5, True, 0, 1), (10, None, True, 1, 1)])
def test_number_of_batches(n, b, drop, train, other):
    t = TaskData("t", train=_data(n), val=_data(n), test=_data(n), batch_size=b, drop_last=drop)
    assert t.num_batches("train") == train and t.num_batches("val") == other and t.num_batches("test") == other
    assert t.num_batches() == train
    assert len(list(t.batches("train", torch.Generator().manual_seed(0)))) == train
    assert len(list(t.batches("test"))) == other
    assert TaskData("t", train=_data(n)).num_batches("val") == 0
    assert list(TaskData("t", train=_data(n)).batches("val")) == []


def test_training_batches_follow_the_generator_s_permutation():
    t = TaskData("t", train=_data(10), batch_size=4)
    got = torch.cat([x for x, _ in t.batches("train", torch.Generator().manual_seed(3))]).view(-1)
    want = torch.randperm(10, generator=torch.Generator().manual_seed(3)).float()
    assert torch.equal(got, want)
    batches = list(t.batches("train", torch.Generator().manual_seed(3)))
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    assert all(torch.equal(y, 2 * x) for x, y in batches)  # rows stay paired


def test_evaluation_batches_are_in_order_and_need_no_generator():
    t = TaskData("t", train=_data(10), test=_data(7), batch_size=3)
    got = torch.cat([x for x, _ in t.batches("test")]).view(-1)
    assert got.tolist() == list(range(7))
    with pytest.raises(ValueError, match="mini-batch training needs an explicit torch.Generator"):
        next(t.batches("train"))


def test_full_batch_is_the_data_itself_in_order():
    x, y = _data(5)
    t = TaskData("t", train=(x, y))
    (batch,) = list(t.batches("train"))
    assert batch[0] is x and batch[1] is y


def test_transforms_apply_to_training_batches_only():
    seen = []

    def tf(batch, g):
        seen.append(g)
        return tuple(v + 100 for v in batch)

    g = torch.Generator().manual_seed(0)
    t = TaskData("t", train=_data(6), test=_data(6), batch_size=3, transform=tf)
    assert all(x.min() >= 100 for x, _ in t.batches("train", g)) and seen == [g, g]
    assert torch.cat([x for x, _ in t.batches("test")]).max() == 5
    full = TaskData("t", train=_data(4), test=_data(4), transform=tf)
    assert next(full.batches("train", g))[0].min() == 100 and next(full.batches("test"))[0].max() == 3


def test_mappings_of_tensors_batch_alike():
    x, y = _data(6)
    t = TaskData("t", train={"x": x, "y": y}, batch_size=4)
    batches = list(t.batches("train", torch.Generator().manual_seed(1)))
    assert [set(b) for b in batches] == [{"x", "y"}] * 2 and [len(b["x"]) for b in batches] == [4, 2]
    assert all(torch.equal(b["y"], 2 * b["x"]) for b in batches)


def test_only_three_splits():
    t = TaskData("t", train=_data(3))
    with pytest.raises(ValueError, match=r"^split must be 'train', 'val' or 'test', got 'dev'$"):
        t.split("dev")


def test_to_device_keeps_the_container_and_leaves_other_values():
    from empirics._taskdata import to_device

    x = torch.ones(2)
    out = to_device({"a": (x, [x]), "n": 3}, torch.device("cpu"))
    assert set(out) == {"a", "n"} and out["n"] == 3
    assert type(out["a"]) is tuple and type(out["a"][1]) is list and torch.equal(out["a"][0], x)


def test_validation_batches_are_not_transformed_and_a_built_split_name_is_the_same_split():
    def tf(batch, g):
        return tuple(v + 100 for v in batch)

    t = TaskData("t", train=_data(6), val=_data(6), batch_size=3, transform=tf, drop_last=True)
    assert torch.cat([x for x, _ in t.batches("val")]).tolist() == [[float(i)] for i in range(6)]
    name = "".join(["tr", "ain"])  # equal to "train", not the same object
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    a = [x for x, _ in t.batches(name, g1)]
    b = [x for x, _ in t.batches("train", g2)]
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and len(a) == len(b) == 2
    assert a[0].min() >= 100
    u = TaskData("t", train=_data(10), batch_size=3, drop_last=True)
    assert u.num_batches(name) == 3
