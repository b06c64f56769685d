"""The packing half of :mod:`empirics.real.bundle`: the bundle's layout, ``pack``, and the
manifest's reading and verification (every file's size and sha256; the manifest's own
content hash). Split off so that the bundle module stays one screenful of run/merge/render."""
from __future__ import annotations

import lzma
import shutil
import sys
from pathlib import Path

from landscape.runtime.integrity import file_sha256 as _sha256

#: Package folders that make up the code of a bundle.
CODE_PACKAGES = ("empirics", "landscape", "figures", "theory")
#: Single files packed beside them.
CODE_FILES = ("pyproject.toml", "README.md")
#: Paths inside the packages that are outputs, not code (records of earlier runs).
CODE_EXCLUDE_PREFIXES = ("figures/results/",)
#: Files of a HuggingFace BERT folder needed to load it (weights handled separately).
MODEL_FILES = ("config.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
               "tokenizer.json")
CIFAR_NAME = "cifar10_jpeg_q75.tar.xz"
VALID_NAME = "valid_self_original.regen_cands.txt.gz"
PERSONA_MAPS = ("valid_persona_map", "test_persona_map", "train_persona_map")


class BundleError(ValueError):
    """Bad input for a bundle command (exit code 2)."""


# ------------------------------------------------------------------------------------------
# pack
# ------------------------------------------------------------------------------------------



def _code_files(root: Path) -> list:
    """Package files of the checkout at ``root``: git's tracked and untracked-not-ignored
    files when it is a repository, else every file but caches."""
    import subprocess

    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z", "--", *CODE_PACKAGES],
                             cwd=root, capture_output=True, check=True, timeout=60).stdout.decode()
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.SubprocessError):
        files = [str(p.relative_to(root)) for pkg in CODE_PACKAGES for p in (root / pkg).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts]
    files = [f for f in files if not f.startswith(CODE_EXCLUDE_PREFIXES) and (root / f).is_file()]
    return sorted(files) + [f for f in CODE_FILES if (root / f).is_file()]


def _pack_model(src: Path, dest: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)
    weights = src / "model.safetensors"
    if not weights.is_file():
        raise BundleError(f"{src} holds no model.safetensors")
    state = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous()
             for k, v in load_file(str(weights)).items() if not k.startswith("pooler.")}
    tmp = dest / "model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "pt"})
    with open(tmp, "rb") as fi, lzma.open(dest / "model.safetensors.xz", "wb", preset=6) as fo:
        shutil.copyfileobj(fi, fo)
    tmp.unlink()


def pack(dest, *, vision: bool = True, language: bool = True, archive=None, valid_file=None, map_dir=None,
         model=None, root=None, verbose: bool = True) -> dict:
    """Write the bundle folder ``dest`` (must not exist or be empty); returns its manifest."""
    from .._records import provenance, write_json
    from ._paths import PROJECT_ROOT

    from landscape.runtime.cli import UsageError, check_output_dir

    root = Path(root or PROJECT_ROOT)
    dest = Path(dest)
    try:
        check_output_dir(dest, "--dest")  # a file, or below a file / a read-only folder: refused first
    except UsageError as exc:
        raise BundleError(str(exc)) from None
    sources = {}
    if vision:
        from ._cifar import DEFAULT_ARCHIVE

        sources["archive"] = Path(archive or DEFAULT_ARCHIVE)
    if language:
        from ._convai2 import DEFAULT_MAP_DIR, DEFAULT_VALID_FILE

        sources["valid_file"] = Path(valid_file or DEFAULT_VALID_FILE)
        sources["map_dir"] = Path(map_dir or DEFAULT_MAP_DIR)
        if model is None:
            from ._text import default_model_path

            try:
                model = default_model_path()
            except FileNotFoundError as exc:
                raise BundleError(f"{exc} (or pack with --no-language)") from exc
        sources["model"] = Path(model)
    for what, p in sources.items():
        if not p.exists():
            raise BundleError(f"{what} not found: {p}")
    if language and not (sources["map_dir"] / "valid_persona_map").is_file():
        raise BundleError(f"{sources['map_dir']} holds no valid_persona_map")
    if dest.exists() and any(dest.iterdir()):
        raise BundleError(f"{dest} exists and is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    bar = tqdm(desc="bundle pack", unit="step", leave=False, disable=None if verbose else True)
    step = lambda what: (bar.set_postfix_str(what, refresh=False), bar.update())  # noqa: E731
    step("code")
    for f in _code_files(root):
        (dest / "code" / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, dest / "code" / f)
    data = dest / "data"
    data.mkdir()
    if vision:
        step("CIFAR-10 archive")
        shutil.copy2(sources["archive"], data / CIFAR_NAME)
    if language:
        step("ConvAI2 files")
        (data / "convai2").mkdir()
        shutil.copy2(sources["valid_file"], data / "convai2" / VALID_NAME)
        for m in PERSONA_MAPS:
            if (sources["map_dir"] / m).is_file():
                shutil.copy2(sources["map_dir"] / m, data / "convai2" / m)
        step("text encoder (float16, xz: the slow step)")
        _pack_model(sources["model"], data / "minilm")
    step("sha256 manifest")
    files = {str(p.relative_to(dest)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(dest.rglob("*")) if p.is_file()}
    manifest = {"kind": "loraml.bundle", "vision": vision, "language": language,
                "code_revision": provenance()["git"], "files": files,
                "total_bytes": sum(f["bytes"] for f in files.values()),
                "note": "Everything an offline GPU host needs for Tables 1-3: run "
                        "'python -m empirics.real.bundle run --bundle .. --out OUT' from code/."}
    write_json(dest / "MANIFEST.json", manifest)
    bar.close()
    if verbose:
        print_sizes(manifest, dest)
    return manifest


def print_sizes(manifest: dict, dest) -> None:
    """The size of each part of a bundle in MiB (code, each data folder, the model), then
    the total, on stderr."""
    files = manifest["files"]
    by_part = {}
    for name, f in files.items():
        part = "/".join(name.split("/")[:2]) if name.startswith("data/") else name.split("/")[0]
        by_part[part] = by_part.get(part, 0) + f["bytes"]
    for part, b in sorted(by_part.items()):
        print(f"{part:28s} {b / 2 ** 20:8.2f} MiB", file=sys.stderr)
    print(f"{'total':28s} {manifest['total_bytes'] / 2 ** 20:8.2f} MiB in {dest}", file=sys.stderr)


def verify(bundle) -> dict:
    """The bundle's manifest, after checking every file's size and sha256."""
    bundle = Path(bundle)
    mpath = bundle / "MANIFEST.json"
    if not mpath.is_file():
        raise BundleError(f"{bundle} is not a bundle (no MANIFEST.json)")
    manifest = read_manifest(bundle)
    for name, f in manifest["files"].items():
        p = bundle / name
        if not p.is_file() or p.stat().st_size != f["bytes"] or _sha256(p) != f["sha256"]:
            raise BundleError(f"bundle file {name} is missing or differs from MANIFEST.json")
    return manifest


def read_manifest(bundle) -> dict:
    """``MANIFEST.json`` of a bundle, checked to be one (BundleError otherwise)."""
    mpath = Path(bundle) / "MANIFEST.json"
    if not mpath.is_file():
        raise BundleError(f"{bundle} is not a bundle (no MANIFEST.json)")
    from landscape.runtime.integrity import StoreIntegrityError, read_sealed

    try:
        manifest = read_sealed(mpath)
    except StoreIntegrityError as exc:
        raise BundleError(f"{str(exc).split('; it is not used')[0]}; pack the bundle again") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != "loraml.bundle":
        raise BundleError(f"{mpath}: not a bundle manifest (kind is not 'loraml.bundle'); pack the bundle again")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
            isinstance(n, str) and isinstance(f, dict) and isinstance(f.get("bytes"), int)
            and isinstance(f.get("sha256"), str) for n, f in files.items()):
        raise BundleError(f"{mpath}: its 'files' table is malformed; pack the bundle again")
    bad = [n for n in files if n.startswith("/") or ".." in Path(n).parts]
    if bad:
        raise BundleError(f"{mpath}: names a file outside the bundle ({bad[0]!r})")
    return manifest
