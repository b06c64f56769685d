"""empirics._adapters pinned: each adapter set splits the model's parameters into the base and
one list per name (a partition, with names that are prefixes of others, task_1 / task_10), the
LoRA scaling alpha / rank (alpha defaults to the rank), lora_A drawn from the run's generator
(kaiming-uniform, bound 1 / sqrt(fan_in)) and lora_B zero, the caller's global RNG untouched,
which parameters train (the base only when asked), the refusals, and strip() giving back the
base model (LoRA removed unmerged, the original head restored).
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from empirics._adapters import HeadSet, LoraHeadSet, NoAdapters, PeftLoraSet


def _base(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


def _lora(base, names, *, rank=2, alpha=None, train_base=False, seed=7, targets=("0", "2")):
    return PeftLoraSet(base, names, rank=rank, alpha=alpha, dropout=0.0, target_modules=targets,
                       generator=torch.Generator().manual_seed(seed), train_base=train_base)


NAMES = tuple(f"task_{t}" for t in range(12))  # task_1 is a prefix of task_10 and task_11


def _ids(params):
    return [id(p) for p in params]


def test_lora_parameters_are_a_partition_by_name():
    s = _lora(_base(), NAMES)
    every = _ids(s.model.parameters())
    parts = [_ids(s.base_parameters())] + [_ids(s.adapter_parameters(n)) for n in NAMES]
    assert sorted(sum(parts, [])) == sorted(every)  # disjoint and complete
    named = dict((id(p), n) for n, p in s.model.named_parameters())
    for n in NAMES:
        got = [named[i] for i in _ids(s.adapter_parameters(n))]
        assert len(got) == 4  # lora_A and lora_B of two target layers
        assert all(f".{n}." in f".{pn}." and "lora_" in pn for pn in got)
    assert not any("lora_" in named[i] for i in _ids(s.base_parameters()))
    assert _ids(s.all_adapter_parameters()) == sum(parts[1:], [])


@pytest.mark.parametrize("rank, alpha, scale", [(1, None, 1.0), (2, None, 1.0), (4, 16, 4.0), (2, 1, 0.5)])
def test_lora_scaling_is_alpha_over_rank(rank, alpha, scale):
    s = _lora(_base(), ("x", "y"), rank=rank, alpha=alpha)
    mods = [m for m in s.model.modules() if hasattr(m, "lora_A") and isinstance(m.lora_A, nn.ModuleDict)]
    assert len(mods) == 2
    for m in mods:
        assert m.scaling == {"x": scale, "y": scale} and m.r == {"x": rank, "y": rank}
        # the update a layer adds is scale * B A: with B set, the output moves by exactly that
        x = torch.randn(3, m.in_features)
        s.activate("y")
        with torch.no_grad():
            m.lora_B["y"].weight.normal_()
            want = m.base_layer(x) + scale * x @ (m.lora_B["y"].weight @ m.lora_A["y"].weight).T
            torch.testing.assert_close(m(x), want, rtol=1e-6, atol=1e-6)


def test_lora_initialisation_from_the_generator_and_the_global_rng_untouched():
    base = _base()
    before = torch.random.get_rng_state()
    s1 = _lora(base, ("x", "y"), seed=3)
    after = torch.random.get_rng_state()
    assert torch.equal(before, after)
    s2 = _lora(_base(), ("x", "y"), seed=3)
    s3 = _lora(_base(), ("x", "y"), seed=4)
    for n in ("x", "y"):
        for p1, p2, p3 in zip(s1.adapter_parameters(n), s2.adapter_parameters(n), s3.adapter_parameters(n)):
            assert torch.equal(p1, p2)
            assert torch.equal(p1, p3) == (not p1.any())  # lora_B is zero for every seed
    for m in s1.model.modules():
        if hasattr(m, "lora_A") and isinstance(m.lora_A, nn.ModuleDict):
            for n in ("x", "y"):
                A, B = m.lora_A[n].weight, m.lora_B[n].weight
                assert not B.any() and A.abs().max() <= 1 / math.sqrt(m.in_features)
                assert A.abs().max() > 0.5 / math.sqrt(m.in_features)
            assert not torch.equal(m.lora_A["x"].weight, m.lora_A["y"].weight)  # one draw per adapter
    # a fresh set starts as the base model: lora_B = 0
    x = torch.randn(4, 6)
    torch.testing.assert_close(s1.model(x), _base()(x), rtol=0, atol=0)


@pytest.mark.parametrize("train_base", [False, True])
def test_which_parameters_train(train_base):
    s = _lora(_base(), ("x", "y", "z"), train_base=train_base)
    for n in ("x", "y", "z", "x"):
        s.activate(n)
        assert all(p.requires_grad is train_base for p in s.base_parameters())
        assert all(p.requires_grad for m in ("x", "y", "z") for p in s.adapter_parameters(m))
    with pytest.raises(ValueError, match="unknown adapter 'w'"):
        s.activate("w")


def test_lora_refusals():
    with pytest.raises(ValueError, match="LoRA rank must be >= 1, got 0"):
        _lora(_base(), ("x",), rank=0)
    with pytest.raises(ValueError, match="declares no lora_target_modules"):
        _lora(_base(), ("x",), targets=())
    assert _lora(_base(), ("x",), rank=1).names == ("x",)


def test_lora_strip_is_the_base_unmerged():
    base = _base()
    ref = {k: v.clone() for k, v in base.state_dict().items()}
    s = _lora(base, ("x",))
    with torch.no_grad():
        for p in s.adapter_parameters("x"):
            p.add_(1.0)
    stripped = s.strip()
    assert not any("lora" in k for k in stripped.state_dict())
    for k, v in stripped.state_dict().items():
        assert torch.equal(v, ref[k.replace("base_layer.", "")])


def test_no_adapters():
    m = _base()
    s = NoAdapters(m)
    assert s.names == () and s.strip() is m and _ids(s.base_parameters()) == _ids(m.parameters())
    s.activate(None)
    with pytest.raises(ValueError, match="cannot activate 'x'"):
        s.activate("x")
    with pytest.raises(KeyError):
        s.adapter_parameters("x")
    assert s.all_adapter_parameters() == []


def _new_head(base, gen):
    head = nn.Linear(4, 3)
    with torch.no_grad():
        head.weight.uniform_(-1, 1, generator=gen)
        head.bias.zero_()
    return head


@pytest.mark.parametrize("train_base", [False, True])
def test_heads_switch_and_strip(train_base):
    base = _base()
    original = base[4]
    s = HeadSet(base, NAMES, head_module="4", new_head=_new_head, generator=torch.Generator().manual_seed(1),
                train_base=train_base)
    assert sorted(_ids(s.base_parameters()) + sum((_ids(s.adapter_parameters(n)) for n in NAMES), [])) == \
        sorted(_ids(s.model.parameters()))
    assert all(p.requires_grad is train_base for p in s.base_parameters())
    assert all(p.requires_grad for n in NAMES for p in s.adapter_parameters(n))
    x = torch.randn(2, 6)
    body = base[:4](x)
    for n in ("task_1", "task_10"):
        s.activate(n)
        torch.testing.assert_close(s.model(x), s.switch.heads[n](body))
    assert not torch.equal(s.switch.heads["task_1"].weight, s.switch.heads["task_10"].weight)
    with pytest.raises(ValueError, match="unknown head 'x'"):
        s.activate("x")
    assert s.strip() is base and base[4] is original
    with pytest.raises(ValueError, match="declares no head_module"):
        HeadSet(_base(), ("x",), head_module="", new_head=_new_head, generator=torch.Generator(), train_base=False)


def test_lora_beside_heads():
    base = _base()
    original = base[4]
    heads = HeadSet(base, ("x", "y"), head_module="4", new_head=_new_head,
                    generator=torch.Generator().manual_seed(1), train_base=False)
    s = LoraHeadSet(heads, lambda m: _lora(m, ("x", "y"), targets=("0", "2")))
    for n in ("x", "y"):
        got = _ids(s.adapter_parameters(n))
        assert got == _ids(heads.adapter_parameters(n)) + _ids(s.lora.adapter_parameters(n))
    assert sorted(_ids(s.base_parameters()) + sum((_ids(s.adapter_parameters(n)) for n in ("x", "y")), [])) == \
        sorted(_ids(s.model.parameters()))
    s.activate("y")
    assert heads.switch.active == "y"
    assert all(p.requires_grad for n in ("x", "y") for p in s.adapter_parameters(n))
    assert not any(p.requires_grad for p in s.base_parameters())
    stripped = s.strip()
    assert stripped.get_submodule("4") is original and not any("lora" in k for k in stripped.state_dict())
    heads2 = HeadSet(_base(), ("x", "y"), head_module="4", new_head=_new_head, generator=torch.Generator(),
                     train_base=False)
    with pytest.raises(ValueError, match="differ from head names"):
        LoraHeadSet(heads2, lambda m: _lora(m, ("y", "x")))


def test_adapter_sets_take_the_model_and_names_by_keyword_and_options_only_by_keyword():
    s = PeftLoraSet(base=_base(), names=("x",), rank=1, alpha=None, dropout=0.0, target_modules=("0",),
                    generator=torch.Generator().manual_seed(0), train_base=False)
    assert s.names == ("x",)
    with pytest.raises(TypeError):
        PeftLoraSet(_base(), ("x",), 1, None, 0.0, ("0",), torch.Generator(), False)
    h = HeadSet(base=_base(), names=("x",), head_module="4", new_head=_new_head, generator=torch.Generator(),
                train_base=False)
    assert h.names == ("x",)
    with pytest.raises(TypeError):
        HeadSet(_base(), ("x",), "4", _new_head, torch.Generator(), False)


def test_an_adapter_set_must_define_each_of_its_four_abstract_methods():
    """AdapterSet is abstract in activate, adapter_parameters, base_parameters and strip: a
    subclass that leaves any one of them out cannot be instantiated."""
    from empirics._adapters import AdapterSet

    from ._pin_tools import assert_abstract_in_exactly

    assert_abstract_in_exactly(AdapterSet, ("activate", "adapter_parameters", "base_parameters", "strip"))


def test_attaching_lora_forks_the_rng_of_exactly_the_cuda_devices_the_base_is_on(monkeypatch):
    """peft draws from the global RNGs; the adapters fork those of the CUDA devices holding the
    base (and only those: not an mps or meta device), so the caller's streams stay as they
    were. Stand-in parameters report their devices; the device type is built at run time, as
    torch's own strings are (not the interned literal)."""
    from types import SimpleNamespace

    seen = []

    class Stop(Exception):
        pass

    def fork(devices=None, device_type="cuda", **kw):
        seen.append((list(devices), device_type))
        raise Stop

    monkeypatch.setattr(torch.random, "fork_rng", fork)
    cuda = "".join(["cu", "da"])
    params = [SimpleNamespace(device=SimpleNamespace(type=cuda, index=i)) for i in (1, 0, 1)]
    params += [SimpleNamespace(device=SimpleNamespace(type=t, index=7)) for t in ("cpu", "mps", "meta")]
    base = SimpleNamespace(parameters=lambda: iter(params))
    with pytest.raises(Stop):
        PeftLoraSet(base, ("x",), rank=1, alpha=None, dropout=0.0, target_modules=("0",),
                    generator=torch.Generator(), train_base=False)
    assert seen == [([0, 1], "cuda")]


def test_lora_a_is_drawn_as_peft_draws_it_and_the_first_adapter_is_active():
    """Each lora_A is redrawn from the run's generator with kaiming_uniform(a = sqrt(5)), whose
    bound is 1 / sqrt(fan_in); lora_B starts at zero; after construction the first adapter is
    the active one."""
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(400, 5))
    s = PeftLoraSet(base, ("x", "y"), rank=4, alpha=None, dropout=0.0, target_modules=("0",),
                    generator=torch.Generator().manual_seed(3), train_base=False)
    mod = s.model.base_model.model[0]
    bound = 1.0 / math.sqrt(400)
    for n in ("x", "y"):
        A = mod.lora_A[n].weight.detach()
        assert float(A.abs().max()) <= bound and float(A.abs().max()) >= 0.97 * bound  # 1600 draws
        assert not mod.lora_B[n].weight.detach().any()
    assert s.model.base_model.active_adapter in ("x", ["x"])
