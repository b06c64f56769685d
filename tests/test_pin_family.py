"""empirics._family's defaults pinned: evaluation is the mean of the loss over the split's
batches, a new head copies the old head's shapes and re-draws matrices Kaiming-uniform and
vectors as zeros from the given generator, the base is trainable in retraining only, and the
LoRA targets of LoRA-with-heads leave the head out.
"""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from empirics._family import Family  # noqa: E402
from empirics._taskdata import TaskData  # noqa: E402


class _Fam(Family):
    lora_target_modules = ("0", "2")
    head_module = "2"

    def init_model(self, generator):
        return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))

    def retrain_tasks(self):
        return []

    def test_task(self):
        return None

    def loss(self, model, batch):
        x, y = batch
        return ((model(x) - y) ** 2).mean()


def test_evaluation_is_the_mean_of_the_batch_losses():
    fam = _Fam()
    model = fam.init_model(None)
    x, y = torch.randn(7, 3), torch.randn(7, 2)
    task = TaskData("t", train=(x, y), val=(x, y), batch_size=3)
    with torch.no_grad():
        losses = [float(fam.loss(model, (x[i:i + 3], y[i:i + 3]))) for i in range(0, 7, 3)]
    assert fam.evaluate(model, task, "val")["loss"] == pytest.approx(sum(losses) / 3, rel=1e-6)
    assert fam.evaluate(model, TaskData("t", train=(x, y)), "val") == {"loss": 0.0}  # no batches: 0, not a division by 0
    assert (Family.selection_metric, Family.selection_mode, Family.head_module) == ("loss", "min", None)


def test_a_new_head_is_redrawn_from_the_generator():
    fam = _Fam()
    model = fam.init_model(None)
    head = fam.new_head(model, torch.Generator().manual_seed(3))
    assert head is not model[2] and head.weight.shape == (2, 4) and head.bias.shape == (2,)
    assert torch.equal(head.bias, torch.zeros(2))
    want = torch.empty(2, 4)
    nn.init.kaiming_uniform_(want, a=math.sqrt(5), generator=torch.Generator().manual_seed(3))
    assert torch.equal(head.weight, want)
    assert not torch.equal(model[2].bias, torch.zeros(2))  # the model's own head untouched


@pytest.mark.parametrize("stage, trainable", [("retrain", True), ("finetune", False)])
def test_the_base_is_trainable_in_retraining_only(stage, trainable):
    pytest.importorskip("peft")
    stage = "".join(list(stage))  # built at run time (as read from a file), not the interned literal
    fam = _Fam()
    model = fam.init_model(None)
    heads = fam.attach_heads(model, ["task_a", "task_b"], stage=stage, generator=torch.Generator().manual_seed(0))
    base = [p for n, p in heads.model.named_parameters() if "heads" not in n and n.startswith(("0.", "body.0."))]
    assert base and all(p.requires_grad is trainable for p in base)


def test_lora_with_heads_targets_the_body_only():
    pytest.importorskip("peft")
    fam = _Fam()
    model = fam.init_model(None)
    s = fam.attach_lora_heads(model, ["task_a"], rank=1, stage="retrain", generator=torch.Generator().manual_seed(0))
    names = [n for n, _ in s.model.named_parameters() if "lora_A" in n]
    assert names and all(".2." not in n and not n.startswith("2.") for n in names)


def test_attach_signatures_take_sizes_and_options_by_name_only_with_no_dropout_by_default():
    import inspect

    for fn in (Family.attach_lora, Family.attach_heads, Family.attach_lora_heads):
        params = list(inspect.signature(fn).parameters.values())
        assert [p.kind for p in params[:3]] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * 3  # self, model, names
        assert all(p.kind == inspect.Parameter.KEYWORD_ONLY for p in params[3:])
    for fn in (Family.attach_lora, Family.attach_lora_heads):
        sig = inspect.signature(fn).parameters
        assert sig["dropout"].default == 0.0 and sig["alpha"].default is None


@pytest.mark.parametrize("stage, trainable", [("retrain", True), ("finetune", False)])
def test_lora_with_heads_trains_the_body_s_base_in_retraining_only(stage, trainable):
    pytest.importorskip("peft")
    stage = "".join(list(stage))  # built at run time, not the interned literal
    fam = _Fam()
    s = fam.attach_lora_heads(fam.init_model(None), ["task_a"], rank=1, stage=stage,
                              generator=torch.Generator().manual_seed(0))
    grads = dict((n, p.requires_grad) for n, p in s.model.named_parameters())
    base = [g for n, g in grads.items() if "base_layer" in n]
    assert base and all(g is trainable for g in base)
    assert all(g for n, g in grads.items() if "lora_" in n or "heads" in n)  # adapters and heads always train


def test_a_family_must_define_each_of_its_four_abstract_methods():
    """Family is abstract in init_model, retrain_tasks, test_task and loss: a subclass that
    leaves any one of them out cannot be instantiated."""
    from empirics._family import Family

    from ._pin_tools import assert_abstract_in_exactly

    assert_abstract_in_exactly(Family, ("init_model", "retrain_tasks", "test_task", "loss"))


def test_a_new_convolutional_head_redraws_its_4d_kernel_like_a_matrix():
    """Every parameter of dimension >= 2 (a conv head's 4-D kernel too, not only a matrix) is
    re-drawn Kaiming-uniform from the generator; vectors become zeros."""

    class _Conv(_Fam):
        head_module = "1"

        def init_model(self, generator):
            return nn.Sequential(nn.Identity(), nn.Conv2d(2, 3, kernel_size=2))

    fam = _Conv()
    model = fam.init_model(None)
    head = fam.new_head(model, torch.Generator().manual_seed(4))
    want = torch.empty_like(model[1].weight)
    nn.init.kaiming_uniform_(want, a=math.sqrt(5), generator=torch.Generator().manual_seed(4))
    assert head.weight.shape == (3, 2, 2, 2) and torch.equal(head.weight, want)
    assert torch.count_nonzero(head.bias) == 0


@pytest.mark.parametrize("stage, trains_base", [("retrain", True), ("finetune", False)])
def test_default_lora_trains_the_base_in_retraining_only(stage, trains_base):
    """The default LoRA adapters leave the base trainable while retraining and freeze it while
    fine-tuning (only the adapter of the new task is trained then)."""
    fam = _Fam()
    model = fam.init_model(None)
    s = fam.attach_lora(model, ["a"], stage=stage, rank=1, generator=torch.Generator().manual_seed(0))
    base = s.base_parameters()
    assert s.train_base is trains_base
    assert base and all(p.requires_grad is trains_base for p in base)
    adapter = s.adapter_parameters("a")
    assert adapter and all(p.requires_grad for p in adapter)
