"""Fill ``carry/real/`` with what the GPU run needs (run here, on the CPU machine, once).

The device machine receives the repository and the folders named in ``carry`` (64 MiB
in all); ``../shared`` does not travel. This copies the CIFAR-10 JPEG archive, the
ConvAI2 valid dialogues and persona map, and the default text encoder stored in float16
and xz-compressed (the float32 folder alone is 91 MB), then prints the sizes.

Usage::

    python -m empirics.real.gpu_prepare [--dest carry/real] [--no-language] [--no-vision]
"""
from __future__ import annotations

import argparse
import lzma
import shutil
import sys
from pathlib import Path

from ._cifar import DEFAULT_ARCHIVE
from ._convai2 import DEFAULT_MAP_DIR, DEFAULT_VALID_FILE
from ._paths import PROJECT_ROOT

#: The device tool's limit on the working tree plus carried folders.
CARRY_LIMIT_BYTES = 64 * 2 ** 20
#: Files of a HuggingFace BERT folder needed to load it (weights handled separately).
_MODEL_FILES = ("config.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def _folder_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def _travelling_bytes() -> int:
    """Bytes of the working tree that travel anyway (tracked + untracked, not ignored)."""
    import subprocess

    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=PROJECT_ROOT,
                         capture_output=True, check=False).stdout.decode().split("\0")
    return sum((PROJECT_ROOT / f).stat().st_size for f in out if f and (PROJECT_ROOT / f).is_file())


def prepare(dest: Path, *, vision: bool = True, language: bool = True) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    if vision:
        shutil.copy2(DEFAULT_ARCHIVE, dest / DEFAULT_ARCHIVE.name)
    if language:
        import torch
        from safetensors.torch import load_file, save_file

        from ._text import default_model_path

        (dest / "convai2").mkdir(exist_ok=True)
        shutil.copy2(DEFAULT_VALID_FILE, dest / "convai2" / DEFAULT_VALID_FILE.name)
        shutil.copy2(DEFAULT_MAP_DIR / "valid_persona_map", dest / "convai2" / "valid_persona_map")
        src = default_model_path()
        mdir = dest / "minilm"
        mdir.mkdir(exist_ok=True)
        for name in _MODEL_FILES:
            shutil.copy2(src / name, mdir / name)
        state = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(src / "model.safetensors")).items()
                 if not k.startswith("pooler.")}  # the pair scorer reads the first token, not the pooler
        tmp = mdir / "model.safetensors"
        save_file(state, str(tmp), metadata={"format": "pt"})
        with open(tmp, "rb") as fi, lzma.open(mdir / "model.safetensors.xz", "wb", preset=6) as fo:
            shutil.copyfileobj(fi, fo)
        tmp.unlink()
    tracked = _travelling_bytes()
    total = _folder_size(dest)
    print(f"{dest}: {total / 2 ** 20:.1f} MiB (+ {tracked / 2 ** 20:.1f} MiB of working tree); "
          f"limit {CARRY_LIMIT_BYTES / 2 ** 20:.0f} MiB")
    return 0 if total + tracked < CARRY_LIMIT_BYTES else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m empirics.real.gpu_prepare")
    p.add_argument("--dest", default=str(PROJECT_ROOT / "carry" / "real"))
    p.add_argument("--no-vision", action="store_true")
    p.add_argument("--no-language", action="store_true")
    a = p.parse_args(argv)
    return prepare(Path(a.dest), vision=not a.no_vision, language=not a.no_language)


if __name__ == "__main__":
    sys.exit(main())
