"""Tiny stand-ins for the real data, in the real formats (tests and smoke configurations).

Nothing here is a data set: random pixels, a handful of invented dialogues and a tiny
randomly initialised BERT with a hand-written vocabulary. They exercise the same readers,
families and trainer paths as the real data, in seconds and without any download.
"""
from __future__ import annotations

import gzip
import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ._cifar import CIFAR10_CLASSES

__all__ = ["write_cifar_batches", "write_jpeg_archive", "write_idx", "write_parlai_dialogues",
           "write_persona_map", "write_train_dialogues", "write_tiny_bert", "random_vision_arrays", "FIXTURE_PERSONAS"]


def write_cifar_batches(root, rng: np.random.Generator, *, per_batch: int = 20, n_batches: int = 5,
                        n_test: int = 20, bytes_keys: bool = False) -> Path:
    """Write random images in the original ``cifar-10-batches-py`` pickle layout.

    ``bytes_keys=True`` mimics the original Python-2 pickles (``b"data"`` keys).
    Returns the parent folder (torchvision's ``root``).
    """
    d = Path(root) / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)

    def dump(name, n, label):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = [int(v) for v in np.arange(n) % 10]
        obj = {"batch_label": label, "labels": y, "data": x, "filenames": [f"img_{i}.png" for i in range(n)]}
        if bytes_keys:
            obj = {k.encode(): v for k, v in obj.items()}
        with open(d / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    for i in range(1, n_batches + 1):
        dump(f"data_batch_{i}", per_batch, f"training batch {i} of {n_batches}")
    dump("test_batch", n_test, "testing batch 1 of 1")
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": per_batch, "num_vis": 3072}, f)
    return Path(root)


def write_jpeg_archive(path, rng: np.random.Generator, *, n_train: int = 2, n_test: int = 1) -> dict:
    """Write ``cifar10_jpeg/{train,test}/<class>/NNNN.jpg`` (random 32x32 JPEGs) into a tar.xz.

    Returns the JPEG bytes by (split, class index, file name), to compare decoded pixels.
    """
    from PIL import Image

    written = {}
    with tarfile.open(path, "w:xz") as tar:
        for split, n in (("train", n_train), ("test", n_test)):
            for c, cls in enumerate(CIFAR10_CLASSES):
                for i in range(n):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG", quality=75)
                    data = buf.getvalue()
                    name = f"{i:04d}.jpg"
                    info = tarfile.TarInfo(f"cifar10_jpeg/{split}/{cls}/{name}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                    written[(split, c, name)] = data
    return written


def write_idx(path, array: np.ndarray) -> Path:
    """Write an unsigned-byte idx file (gzipped when the name ends in ``.gz``)."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    raw = header + array.tobytes()
    path = Path(path)
    with (gzip.open(path, "wb") if path.suffix == ".gz" else open(path, "wb")) as f:
        f.write(raw)
    return path


def random_vision_arrays(rng: np.random.Generator, *, n_train: int = 200, n_test: int = 100, side: int = 32,
                         channels: int = 3):
    """Random images with labels 0-9 cycling (a smoke-test stand-in for CIFAR-10)."""
    from ._cifar import VisionArrays

    return VisionArrays(rng.integers(0, 256, (n_train, side, side, channels), dtype=np.uint8),
                        np.arange(n_train) % 10,
                        rng.integers(0, 256, (n_test, side, side, channels), dtype=np.uint8),
                        np.arange(n_test) % 10, tuple(f"class{i}" for i in range(10)),
                        source="random pixels (smoke test)", reader="in-memory")


#: Invented personas: (persona sentences, cluster id). Cluster 1 is written with a
#: contraction to exercise normalisation.
FIXTURE_PERSONAS = [
    (["i like cats.", "i live in a city."], 1),
    (["i'm a cook.", "i like to swim."], 2),
    (["i play guitar.", "i have a dog."], 3),
    (["i love books.", "i drink tea."], 4),
    (["i run every day.", "i like rain."], 5),
]
_WORDS = ("hello how are you today i am fine what do like to eat cats dogs rain tea books guitar swim "
          "cook city run every day good great yes no maybe sure thanks bye nice really").split()


def _utterance(rng):
    return " ".join(rng.choice(_WORDS, size=int(rng.integers(3, 7))))


def write_parlai_dialogues(path, rng: np.random.Generator, *, episodes_per_persona: int = 4,
                           turns: int = 3, n_candidates: int = 20) -> Path:
    """Write invented dialogues in ParlAI ``self_original`` format (``.gz`` if so named)."""
    replies = sorted({_utterance(rng) for _ in range(200)})
    lines = []
    for persona, _ in FIXTURE_PERSONAS:
        for _ in range(episodes_per_persona):
            n = 1
            for s in persona:
                lines.append(f"{n} your persona: {s}")
                n += 1
            for _ in range(turns):
                u = _utterance(rng)
                r = replies[int(rng.integers(len(replies)))]
                cands = [c for c in rng.choice(replies, size=n_candidates + 5, replace=False) if c != r]
                cands = cands[: n_candidates - 1] + [r]
                lines.append(f"{n} {u}\t{r}\t\t{'|'.join(cands)}")
                n += 1
    path = Path(path)
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def write_persona_map(folder, split: str = "valid") -> Path:
    """A PAML-style ``<split>_persona_map`` pickle for :data:`FIXTURE_PERSONAS`."""
    from ._convai2 import normalize_persona_sentence

    m = {cid: [sorted(normalize_persona_sentence(s) for s in p)] for p, cid in FIXTURE_PERSONAS}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{split}_persona_map", "wb") as f:
        pickle.dump(m, f)
    return folder


def write_train_dialogues(path, folder, rng: np.random.Generator, *, episodes_per_persona: int = 4) -> Path:
    """Plain-text train-file dialogues and their ``train_persona_map`` in ``folder``: the
    fixture personas with "i ..." rewritten "we ...", since ConvAI2's train personas are not
    its valid personas (a split with a user's train file refuses shared personas)."""
    from ._convai2 import load_persona_map

    if Path(path).suffix == ".gz":
        raise ValueError(f"{path}: write_train_dialogues writes plain text only")
    path = write_parlai_dialogues(path, rng, episodes_per_persona=episodes_per_persona)
    path.write_text(path.read_text().replace("your persona: i ", "your persona: we "))
    folder = write_persona_map(folder, split="train")
    tmap = load_persona_map(folder / "train_persona_map")
    tmap = {c: [sorted("we " + x[2:] for x in p) for p in ps] for c, ps in tmap.items()}
    (folder / "train_persona_map").write_bytes(pickle.dumps(tmap))
    return path


def write_tiny_bert(folder, *, hidden: int = 16, layers: int = 2, heads: int = 2, seed: int = 0) -> Path:
    """Save a randomly initialised tiny BERT and a word-level vocabulary with ``save_pretrained``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "'", ".", ",", "?", "!"] + sorted(set(_WORDS))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(str(folder))
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=2 * hidden, max_position_embeddings=128)
    fork = torch.Generator().manual_seed(seed)
    model = BertModel(cfg)
    with torch.no_grad():  # weights from an explicit generator, not the global RNG
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02, generator=fork)
    model.save_pretrained(str(folder))
    (folder / "FIXTURE.json").write_text(json.dumps({"note": "random tiny BERT for tests"}))
    return folder
