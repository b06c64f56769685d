"""The generic PEFT-ML trainer: gradients reach every adapter and the base, any task count,
Reptile's outer update, determinism, validation-based selection, resuming."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from empirics._linear import LinearConfig, LinearFamily, draw_linear_problem
from empirics._shallow import ShallowConfig, ShallowFamily, draw_shallow_problem
from empirics._trainer import (HeadSet, PeftLoraSet, StageConfig, TaskData, finetune, retrain,
                               task_adapter_name)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def shallow_family(T, d=4, N=16, n=8, seed=0):
    cfg = ShallowConfig(T=T, d=d, k=1, N=N, n=n)
    return ShallowFamily(draw_shallow_problem(cfg, np.random.default_rng(seed)))


@pytest.mark.parametrize("T", [2, 5])
def test_lora_ml_gradients_reach_base_and_every_adapter(T):
    fam = shallow_family(T)
    g = torch.Generator().manual_seed(0)
    base = fam.init_model(g)
    names = [task_adapter_name(t) for t in range(T)]
    ad = fam.attach_lora(base, names, rank=1, stage="retrain", generator=g)
    assert isinstance(ad, PeftLoraSet)
    # one adapter per task, named task_0..task_{T-1}
    assert ad.names == tuple(f"task_{t}" for t in range(T))
    for t, task in enumerate(fam.retrain_tasks()):
        ad.activate(names[t])
        # peft's set_adapter froze the other adapters; the trainer must have undone that
        assert all(p.requires_grad for p in ad.all_adapter_parameters() + ad.base_parameters())
        batch = next(task.batches("train", g))
        fam.loss(ad.model, batch).backward()
    for p in ad.base_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    for n in names:
        grads = [p.grad for p in ad.adapter_parameters(n)]
        assert all(gr is not None for gr in grads)
        # lora_B starts at zero, so its gradient is the nonzero one at the first step
        assert any(gr.abs().sum() > 0 for gr in grads), n


@pytest.mark.parametrize("T", [2, 5])
def test_lora_ml_epoch_moves_every_adapter_and_the_base(T):
    fam = shallow_family(T)
    g = torch.Generator().manual_seed(1)
    res = retrain(fam, StageConfig("lora-ml", epochs=2, lr=1e-2), g)
    ad = res.adapters
    assert len(ad.names) == T
    for n in ad.names:
        # lora_B starts at zero: after training it is nonzero for every task's adapter
        # (lora_A starts nonzero, so all-nonzero means lora_B was trained)
        params = ad.adapter_parameters(n)
        assert len(params) == 2 and all(p.abs().sum() > 0 for p in params), n
    init = fam.init_model(torch.Generator().manual_seed(1))
    moved = [not torch.equal(a, b) for a, b in zip(init.parameters(), res.model.parameters())]
    assert all(moved)
    # the stripped model has no LoRA layers left
    assert not any("lora" in n for n, _ in res.model.named_parameters())


@pytest.mark.parametrize("T", [2, 5])
def test_last_layer_ml_gives_every_head_a_gradient(T):
    fam = shallow_family(T)
    g = torch.Generator().manual_seed(2)
    base = fam.init_model(g)
    ad = fam.attach_heads(base, [task_adapter_name(t) for t in range(T)], stage="retrain", generator=g)
    assert isinstance(ad, HeadSet)
    heads0 = [[p.detach().clone() for p in ad.adapter_parameters(n)] for n in ad.names]
    res = retrain(fam, StageConfig("last-layer-ml", epochs=1, lr=1e-2), torch.Generator().manual_seed(2))
    for n, h0 in zip(res.adapters.names, heads0):
        assert any(not torch.equal(a, b) for a, b in zip(h0, res.adapters.adapter_parameters(n)))
    # heads are removed again: the retrained model has the original head module back
    assert isinstance(res.model[2], torch.nn.Linear)


def test_reptile_outer_update_moves_toward_task_solution():
    cfg = LinearConfig(T=1, d=4, k=1, N=200, n=10)
    P = draw_linear_problem(cfg, np.random.default_rng(3))
    fam = LinearFamily(P)
    inner_steps, inner_lr, eps = 5, 0.1, 0.5
    res = retrain(fam, StageConfig("reptile", epochs=1, lr=eps, reptile_inner_steps=inner_steps,
                                   reptile_inner_lr=inner_lr), torch.Generator().manual_seed(0))
    # phi: inner GD from theta = 0 on the single task; gradient of the loss is A Sxx - Syx
    phi = np.zeros((4, 4))
    for _ in range(inner_steps):
        phi = phi - inner_lr * (phi @ P.Sxx[0] - P.Syx[0])
    A = res.model.A.detach().numpy()
    np.testing.assert_allclose(A, 0 + eps * (phi - 0), atol=1e-12)
    solution = np.linalg.solve(P.Sxx[0], P.Syx[0].T).T  # least-squares fit of the task
    assert np.linalg.norm(A - solution) < np.linalg.norm(0 * A - solution)


def test_determinism_and_seed_dependence_with_minibatches():
    def run(seed):
        fam = shallow_family(3)
        for t in fam._tasks:
            t.batch_size = 5
        g = torch.Generator().manual_seed(seed)
        r = retrain(fam, StageConfig("lora-ml", epochs=3, lr=1e-2), g)
        f = finetune(fam, r.model, StageConfig("lora", epochs=3, lr=1e-2), g)
        return [p.detach().clone() for p in f.model.parameters()], f.history

    a, ha = run(5)
    b, hb = run(5)
    c, _ = run(6)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and ha == hb
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_select_best_returns_best_validation_epoch():
    fam = shallow_family(2)
    for t in fam._tasks:
        t.val = t.train
    res = retrain(fam, StageConfig("sr", epochs=6, lr=0.3, optimizer="sgd", validate_every=1, select_best=True),
                  torch.Generator().manual_seed(0))
    vals = [h["val_loss"] for h in res.history]
    assert res.best_epoch == res.history[int(np.argmin(vals))]["epoch"]
    # the returned weights reproduce the best average validation loss
    got = np.mean([fam.evaluate(res.model, t, "val")["loss"] for t in fam._tasks])
    assert got == pytest.approx(min(vals), rel=1e-5)


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path):
    """A run killed during epoch 3 and started again from its checkpoint ends with the same
    weights, bit for bit, as the run that was never interrupted."""
    full_calls, full = _counted_run(4, 1e-2)
    ck = tmp_path / "ck.pt"
    with pytest.raises(_Interrupt):
        _counted_run(4, 1e-2, ck, stop_after=full_calls // 2)
    _, resumed = _counted_run(4, 1e-2, ck)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 40), bs=st.integers(1, 12), seed=st.integers(0, 2**31))
def test_minibatches_cover_each_sample_once(n, bs, seed):
    task = TaskData("t", train=(torch.arange(n), torch.arange(n) * 2), batch_size=bs)
    seen = torch.cat([b[0] for b in task.batches("train", torch.Generator().manual_seed(seed))])
    assert sorted(seen.tolist()) == list(range(n))
    assert task.num_batches() == -(-n // bs)


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="method"):
        StageConfig("maml", epochs=1, lr=1.0)
    with pytest.raises(ValueError, match="select_best"):
        StageConfig("sr", epochs=1, lr=1.0, select_best=True)
    fam = shallow_family(2)
    with pytest.raises(ValueError, match="retraining method"):
        retrain(fam, StageConfig("lora", epochs=1, lr=1.0), torch.Generator())
    task = TaskData("t", train=(torch.zeros(4),), batch_size=2)
    with pytest.raises(ValueError, match="Generator"):
        next(task.batches("train"))


def test_bf16_autocast_and_last_layer_finetune_run():
    fam = shallow_family(2)
    g = torch.Generator().manual_seed(0)
    r = retrain(fam, StageConfig("last-layer-ml", epochs=2, lr=1e-2, bf16=True), g)
    f = finetune(fam, r.model, StageConfig("last-layer", epochs=2, lr=1e-2, bf16=True), g)
    assert np.isfinite(f.history[-1]["test"]["loss"])
    # fine-tuning trains only the fresh head: the first layer is the retrained one
    torch.testing.assert_close(f.model[0].weight, r.model[0].weight)


# --------------------------------------------------------------------------------------
# learning-rate schedules
# --------------------------------------------------------------------------------------


def _lrs_of_schedule(schedule, total, warmup_fraction=0.0, lr=0.4):
    """Learning rates seen by each of ``total`` optimizer steps, and the lr after the last."""
    from empirics._trainer import make_scheduler

    cfg = StageConfig("sr", epochs=1, lr=lr, optimizer="sgd", schedule=schedule, warmup_fraction=warmup_fraction)
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([w], lr=lr)
    sched = make_scheduler(cfg, opt, total)
    seen = []
    for _ in range(total):
        seen.append(opt.param_groups[0]["lr"])
        w.grad = torch.ones(2)
        opt.step()
        sched.step()
    return seen, opt.param_groups[0]["lr"]


def test_linear_schedule_warms_up_peaks_and_ends_at_zero():
    seen, end = _lrs_of_schedule("linear", total=10, warmup_fraction=0.2)
    # 2 warmup steps (0, lr/2), peak lr at step 2, then linear decay reaching 0 at step 10
    assert seen[:3] == pytest.approx([0.0, 0.2, 0.4])
    assert seen[6] == pytest.approx(0.4 * 4 / 8)
    assert end == 0.0
    from transformers import get_linear_schedule_with_warmup

    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=0.4)
    hf = get_linear_schedule_with_warmup(opt, num_warmup_steps=2, num_training_steps=10)
    ref = []
    for _ in range(10):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        hf.step()
    assert seen == pytest.approx(ref, abs=1e-15)


def test_cosine_schedule_is_cosine_annealing_to_zero():
    seen, end = _lrs_of_schedule("cosine", total=10)
    assert seen[0] == 0.4 and seen[5] == pytest.approx(0.2, abs=1e-15) and end == pytest.approx(0.0, abs=1e-15)
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=0.4)
    ref_sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.0)
    ref = []
    for _ in range(10):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        ref_sched.step()
    assert seen == pytest.approx(ref, abs=1e-12)
    assert _lrs_of_schedule("constant", total=4) == ([0.4] * 4, 0.4)


def test_bad_schedules_are_rejected():
    with pytest.raises(ValueError, match="schedule"):
        StageConfig("sr", epochs=1, lr=1.0, schedule="step")
    with pytest.raises(ValueError, match="warmup_fraction"):
        StageConfig("sr", epochs=1, lr=1.0, schedule="linear", warmup_fraction=1.0)
    with pytest.raises(ValueError, match="constant"):
        StageConfig("sr", epochs=1, lr=1.0, warmup_fraction=0.1)


@pytest.mark.parametrize("method", ["lora-ml", "reptile"])
def test_stage_ends_its_schedule_at_zero_and_resume_is_exact(method, tmp_path, monkeypatch):
    """A scheduled stage interrupted after 2 of 4 epochs and resumed equals the uninterrupted one;
    the checkpoint holds lr 0 after the last step (linear decay over all optimizer steps)."""
    import shutil

    from empirics import _trainer

    kw = dict(reptile_inner_steps=2) if method == "reptile" else {}
    cfg = StageConfig(method, epochs=4, lr=0.5 if method == "reptile" else 1e-2, schedule="linear",
                      warmup_fraction=0.25, checkpoint_every=1, **kw)

    def fam():
        f = shallow_family(2)
        for t in f._tasks:
            t.batch_size = 6  # 16 samples: 3 rounds per epoch
        return f

    mid = tmp_path / "mid.pt"
    save = _trainer._Loop.save

    def save_and_keep_epoch_2(self, epoch, *args):
        save(self, epoch, *args)
        if epoch == 2:
            shutil.copy(self.checkpoint, mid)

    monkeypatch.setattr(_trainer._Loop, "save", save_and_keep_epoch_2)
    full = retrain(fam(), cfg, torch.Generator().manual_seed(4), checkpoint=tmp_path / "full.pt")
    monkeypatch.setattr(_trainer._Loop, "save", save)
    state = torch.load(tmp_path / "full.pt", weights_only=False)
    steps = 4 if method == "reptile" else 4 * 3
    assert state["schedulers"][0]["last_epoch"] == steps
    assert state["optimizers"][0]["param_groups"][0]["lr"] == 0.0
    # epoch 2 of 4 with a 25% warmup: half of the decay is left
    mid_state = torch.load(mid, weights_only=False)
    assert mid_state["optimizers"][0]["param_groups"][0]["lr"] == pytest.approx(cfg.lr * (steps / 2) / (0.75 * steps))
    resumed = retrain(fam(), cfg, torch.Generator().manual_seed(4), checkpoint=mid)
    assert resumed.history == full.history
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the schedule changes training: a constant-lr run ends elsewhere
    const = retrain(fam(), StageConfig(method, epochs=4, lr=cfg.lr, **kw), torch.Generator().manual_seed(4))
    assert not all(torch.equal(a, b) for a, b in zip(full.model.parameters(), const.model.parameters()))


def test_finetune_follows_its_schedule(tmp_path):
    fam = shallow_family(2)
    g = torch.Generator().manual_seed(0)
    r = retrain(fam, StageConfig("sr", epochs=1, lr=1e-2), g)
    finetune(fam, r.model, StageConfig("lora", epochs=3, lr=1e-2, schedule="cosine", checkpoint_every=1), g,
             checkpoint=tmp_path / "ft.pt")
    state = torch.load(tmp_path / "ft.pt", weights_only=False)
    assert state["schedulers"][0]["last_epoch"] == 3  # full batch: one step per epoch
    assert state["optimizers"][0]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-18)


# --------------------------------------------------------------------------------------
# device-side loss sums
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["lora-ml", "reptile"])
def test_epoch_losses_equal_a_step_by_step_host_sum(method):
    """Losses summed on the device and read once per epoch equal the per-step Python sum."""
    fam = shallow_family(3)
    for t in fam._tasks:
        t.batch_size = 5  # 16 samples: 4 rounds per epoch
    seen = []
    loss = fam.loss

    def recording_loss(model, batch):
        out = loss(model, batch)
        if torch.is_grad_enabled():  # training forwards only, not validation
            seen.append(float(out.detach()))
        return out

    fam.loss = recording_loss
    kw = dict(reptile_inner_steps=3) if method == "reptile" else {}
    res = retrain(fam, StageConfig(method, epochs=3, lr=0.5 if method == "reptile" else 1e-2, **kw),
                  torch.Generator().manual_seed(8))
    ref = []
    if method == "reptile":
        for e in range(3):
            total = 0.0
            for v in seen[3 * e:3 * e + 3]:
                total += v
            ref.append(total / 3)
    else:
        per_epoch = 4 * 3
        for e in range(3):
            total = 0.0
            for r in range(4):
                step = 0.0
                for v in seen[e * per_epoch + 3 * r:e * per_epoch + 3 * r + 3]:
                    step += v
                total += step
            ref.append(total / 4)
    assert len(seen) == (9 if method == "reptile" else 36)
    assert [h["train_loss"] for h in res.history] == ref


@pytest.mark.parametrize("schedule, warmup_fraction", [("linear", 0.0), ("linear", 0.3), ("cosine", 0.0),
                                                       ("cosine", 0.25), ("constant", 0.0)])
def test_library_schedulers_equal_the_closed_form(schedule, warmup_fraction):
    """torch's LinearLR / CosineAnnealingLR / SequentialLR give lr_factor's closed form at every step."""
    import math

    from empirics._trainer import lr_factor

    total = 13
    seen, end = _lrs_of_schedule(schedule, total=total, warmup_fraction=warmup_fraction, lr=0.4)
    warmup = math.ceil(warmup_fraction * total)
    ref = [0.4 * lr_factor(schedule, s, total, warmup) for s in range(total + 1)]
    assert seen + [end] == pytest.approx(ref, abs=1e-12)


def test_a_stage_result_is_frozen_and_a_warmup_fraction_must_lie_in_0_1():
    """StageResult cannot be edited; the warmup fraction is refused at 1 and above 1 (and below 0)."""
    import dataclasses

    from empirics._stage import StageResult

    r = StageResult(model=None, adapters=None, history=[], best_epoch=None, config=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.best_epoch = 3
    for bad in (1.0, 1.5, -0.25):
        with pytest.raises(ValueError, match="warmup_fraction"):
            StageConfig("sr", epochs=1, lr=1.0, schedule="linear", warmup_fraction=bad)
    assert StageConfig("sr", epochs=1, lr=1.0, schedule="linear", warmup_fraction=0.5).warmup_fraction == 0.5


class _Interrupt(Exception):
    pass


def _counted_run(epochs, lr, ckpt=None, stop_after=None, seed=9):
    """A 2-task lora-ml retraining with checkpoints every epoch; returns the number of loss
    evaluations, or raises _Interrupt at evaluation ``stop_after + 1`` (a killed run)."""
    fam = shallow_family(2)
    calls = []
    real = fam.loss

    def loss(model, batch):
        if stop_after is not None and len(calls) == stop_after:
            raise _Interrupt
        calls.append(None)
        return real(model, batch)

    fam.loss = loss
    res = retrain(fam, StageConfig("lora-ml", epochs=epochs, lr=lr, checkpoint_every=1),
                  torch.Generator().manual_seed(seed), checkpoint=ckpt)
    return len(calls), res


def test_a_checkpoint_is_resumed_only_by_its_own_configuration(tmp_path):
    """A 4-epoch run killed during epoch 3 leaves the checkpoint of epoch 2: the same run
    resumes it (only epochs 3-4 are trained: half the loss evaluations of a fresh run); a run
    of another learning rate, epoch count or seed starts afresh and says so."""
    fresh, _ = _counted_run(4, 1e-2)
    for name, again, kw in (("same", fresh - fresh // 2, {}), ("lr", fresh, {"lr": 2e-2}), ("lr3", fresh, {"lr": 3e-2}),
                            ("lr5", fresh, {"lr": 5e-3}), ("epochs", fresh * 5 // 4, {"epochs": 5}),
                            ("seed", fresh, {"seed": 10}), ("seed11", fresh, {"seed": 11})):
        ck = tmp_path / f"{name}.pt"
        with pytest.raises(_Interrupt):
            _counted_run(4, 1e-2, ck, stop_after=fresh // 2)
        args = {"epochs": 4, "lr": 1e-2, **kw}
        if name == "same":
            assert _counted_run(args["epochs"], args["lr"], ck)[0] == again
        else:
            with pytest.warns(RuntimeWarning, match="another configuration"):
                assert _counted_run(args["epochs"], args["lr"], ck, seed=kw.get("seed", 9))[0] == again


def test_fine_tuning_evaluates_the_test_task_every_eval_every_epochs():
    """eval_every = 2 over 5 epochs: the test metrics are recorded at epochs 2 and 4 only."""
    fam = shallow_family(2)
    base = retrain(fam, StageConfig("sr", epochs=1, lr=1e-2), torch.Generator().manual_seed(0)).model
    res = finetune(fam, base, StageConfig("lora", epochs=5, lr=1e-2), torch.Generator().manual_seed(1), eval_every=2)
    assert [h["epoch"] for h in res.history if "test" in h and not h.get("final")] == [2, 4]
