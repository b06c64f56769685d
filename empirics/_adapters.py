"""Adapter sets of the PEFT-ML trainer: named LoRA adapters (HF ``peft``), per-task heads,
both at once, or none (SR, Reptile).

The trainer reads parameters through :meth:`AdapterSet.base_parameters` and
:meth:`AdapterSet.adapter_parameters`, never through ``requires_grad`` flags set
elsewhere (see the notes on ``peft`` in :mod:`empirics._trainer`).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

__all__ = ["AdapterSet", "NoAdapters", "PeftLoraSet", "HeadSet", "LoraHeadSet"]

class AdapterSet(ABC):
    """Named adapters (or heads) attached to a base model.

    ``model`` is the module to call; :meth:`activate` selects which adapter its forward
    uses. The trainer reads the parameters through :meth:`base_parameters` and
    :meth:`adapter_parameters`, never through ``requires_grad`` flags set elsewhere.
    """

    model: nn.Module
    names: tuple[str, ...]

    @abstractmethod
    def activate(self, name: str | None) -> None:
        """Make adapter ``name`` the one used by ``model`` (``None``: no adapter)."""

    @abstractmethod
    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        """Trainable parameters of adapter ``name``."""

    @abstractmethod
    def base_parameters(self) -> list[nn.Parameter]:
        """Parameters of the base model (everything that is not an adapter)."""

    @abstractmethod
    def strip(self) -> nn.Module:
        """Return the base model without any adapter (the retrained weights)."""

    def all_adapter_parameters(self) -> list[nn.Parameter]:
        return [p for n in self.names for p in self.adapter_parameters(n)]


class NoAdapters(AdapterSet):
    """The bare model (SR, Reptile)."""

    def __init__(self, model: nn.Module):
        self.model, self.names = model, ()

    def activate(self, name):
        if name is not None:
            raise ValueError(f"model has no adapters, cannot activate {name!r}")

    def adapter_parameters(self, name):
        raise KeyError(name)

    def base_parameters(self):
        return list(self.model.parameters())

    def strip(self):
        return self.model


class PeftLoraSet(AdapterSet):
    """LoRA adapters from HF ``peft`` on ``target_modules`` of a torch model.

    Parameters
    ----------
    base : nn.Module
    names : sequence of str
        Adapter names (``task_0, ...`` in retraining, ``finetune`` in fine-tuning).
    rank, alpha, dropout : LoRA rank, scaling numerator (``peft`` default: ``alpha=rank``,
        i.e. scaling 1) and dropout.
    target_modules : sequence of str
        Module names that receive an adapter.
    generator : torch.Generator
        Source of the ``lora_A`` initialisation (peft would use the global RNG); ``lora_B``
        starts at zero, so every adapter starts as the identity update.
    train_base : bool
        LoRA-ML retraining trains the base too (peft freezes it; it is unfrozen here).
    """

    def __init__(self, base: nn.Module, names: Sequence[str], *, rank: int, alpha: float | None,
                 dropout: float, target_modules: Sequence[str], generator: torch.Generator,
                 train_base: bool):
        from peft import LoraConfig, get_peft_model

        if not target_modules:
            raise ValueError("this family declares no lora_target_modules; LoRA needs at least one")
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.names = tuple(names)
        self.train_base = train_base

        def cfg():
            return LoraConfig(r=rank, lora_alpha=rank if alpha is None else alpha, lora_dropout=dropout,
                              target_modules=list(target_modules), bias="none")

        # peft draws lora_A from the global RNG; fork it so that attaching adapters leaves the
        # caller's global stream as it was (lora_A is redrawn from ``generator`` below)
        cuda = sorted({p.device.index for p in base.parameters() if p.device.type == "cuda"})
        with torch.random.fork_rng(devices=cuda, device_type="cuda"):
            model = get_peft_model(base, cfg(), adapter_name=self.names[0])
            for n in self.names[1:]:
                model.add_adapter(n, cfg())
        self.model = model
        self._adapter_params: dict[str, list[nn.Parameter]] = {n: [] for n in self.names}
        base_params = []
        for pname, p in model.named_parameters():
            owner = next((n for n in self.names if f".{n}." in f".{pname}."), None)
            if "lora_" in pname and owner is not None:
                self._adapter_params[owner].append(p)
            else:
                base_params.append(p)
        self._base_params = base_params
        # Explicit initialisation from the run's generator.
        with torch.no_grad():
            for mod in model.modules():
                if hasattr(mod, "lora_A") and isinstance(mod.lora_A, nn.ModuleDict):
                    for n in self.names:
                        if n in mod.lora_A:
                            nn.init.kaiming_uniform_(mod.lora_A[n].weight, a=math.sqrt(5), generator=generator)
                            nn.init.zeros_(mod.lora_B[n].weight)
        self.activate(self.names[0])

    def _restore_grad_flags(self) -> None:
        # peft's set_adapter froze every other adapter (and get_peft_model the base).
        for n in self.names:
            for p in self._adapter_params[n]:
                p.requires_grad_(True)
        for p in self._base_params:
            p.requires_grad_(self.train_base)

    def activate(self, name):
        if name not in self.names:
            raise ValueError(f"unknown adapter {name!r}; have {self.names}")
        self.model.base_model.set_adapter(name)
        self._restore_grad_flags()

    def adapter_parameters(self, name):
        return list(self._adapter_params[name])

    def base_parameters(self):
        return list(self._base_params)

    def strip(self):
        # unload() removes the LoRA layers without merging: the base as retrained.
        return self.model.unload()


class _HeadSwitch(nn.Module):
    """Stand-in for a family's head module: forwards through the active head."""

    def __init__(self, heads: Mapping[str, nn.Module]):
        super().__init__()
        self.heads = nn.ModuleDict(heads)
        self.active = next(iter(self.heads))

    def forward(self, *args, **kwargs):
        return self.heads[self.active](*args, **kwargs)


class HeadSet(AdapterSet):
    """One head per name: the family's ``head_module`` replaced by a switch of fresh heads.

    Heads are built by :meth:`Family.new_head` from the run's generator.
    """

    def __init__(self, base: nn.Module, names: Sequence[str], *, head_module: str,
                 new_head: Callable[[nn.Module, torch.Generator], nn.Module], generator: torch.Generator,
                 train_base: bool):
        if not head_module:
            raise ValueError("this family declares no head_module; last-layer adaptation needs one")
        self.names = tuple(names)
        self.head_module = head_module
        self._original_head = base.get_submodule(head_module)
        heads = {n: new_head(base, generator) for n in self.names}
        self.switch = _HeadSwitch(heads)
        base.set_submodule(head_module, self.switch)
        self.model = base
        head_ids = {id(p) for p in self.switch.parameters()}
        self._base_params = [p for p in base.parameters() if id(p) not in head_ids]
        for p in self._base_params:
            p.requires_grad_(train_base)
        for p in self.switch.parameters():
            p.requires_grad_(True)

    def activate(self, name):
        if name not in self.names:
            raise ValueError(f"unknown head {name!r}; have {self.names}")
        self.switch.active = name

    def adapter_parameters(self, name):
        return list(self.switch.heads[name].parameters())

    def base_parameters(self):
        return list(self._base_params)

    def strip(self):
        self.model.set_submodule(self.head_module, self._original_head)
        return self.model


class LoraHeadSet(AdapterSet):
    """Per-name LoRA adapters *and* per-name heads at once (the composition of a
    :class:`HeadSet` and a LoRA set on the body).

    The official ConvAI2 code retrains LoRA-ML with one LoRA adapter and one fresh
    classification head per task, and fine-tunes LoRA together with a fresh head. Here the
    family's head module is first replaced by fresh heads (:class:`HeadSet`), then LoRA
    adapters of the same names go on the body (``lora`` builds them; their targets exclude
    the head, which is trained in full). :meth:`activate` selects both parts of a name,
    :meth:`adapter_parameters` returns both, :meth:`strip` removes LoRA and restores the
    original head.
    """

    def __init__(self, heads: HeadSet, lora_factory: Callable[[nn.Module], AdapterSet]):
        self.heads = heads
        self.lora = lora_factory(heads.model)
        if tuple(self.lora.names) != tuple(heads.names):
            raise ValueError(f"LoRA names {self.lora.names} differ from head names {heads.names}")
        self.names = tuple(heads.names)
        self.model = self.lora.model
        head_ids = {id(p) for n in self.names for p in heads.adapter_parameters(n)}
        lora_ids = {id(p) for n in self.names for p in self.lora.adapter_parameters(n)}
        self._base = [p for p in self.model.parameters() if id(p) not in head_ids | lora_ids]
        for n in self.names:  # peft froze the heads (they are not LoRA parameters)
            for p in heads.adapter_parameters(n):
                p.requires_grad_(True)

    def activate(self, name):
        self.lora.activate(name)
        self.heads.activate(name)
        for n in self.names:  # peft's set_adapter / restore touch every non-LoRA flag
            for p in self.heads.adapter_parameters(n):
                p.requires_grad_(True)

    def adapter_parameters(self, name):
        return self.heads.adapter_parameters(name) + self.lora.adapter_parameters(name)

    def base_parameters(self):
        return list(self._base)

    def strip(self):
        self.lora.strip()
        return self.heads.strip()


