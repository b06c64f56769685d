"""Real-data experiments of the paper (vision on CIFAR-10 / Fashion-MNIST, language on
ConvAI2 personas), run through the one PEFT-ML trainer of :mod:`empirics._trainer`.

Public entry points: :func:`run_vision` (Table 1) and :func:`run_language` (Tables 2, 3),
each taking any :class:`RunConfig` field as a keyword over the paper protocol, e.g.
``run_vision("out/v", seeds=(1,), epochs=2, max_per_task=500, width=64)``.

Heavy libraries (torch, peft, transformers) are imported only when a family or a run is
built; the data readers need numpy (and Pillow to decode the JPEG CIFAR-10 copy).
"""
from ._cifar import (CIFAR10_CLASSES, LOSSY_NOTICE, VisionArrays, decode_jpeg_archive,
                     load_cifar10, read_cifar_batches, torchvision_cifar10_class)
from ._convai2 import (RETRAIN_SOURCE_NOTE, build_persona_split, read_parlai_self_original,
                       read_xpersona_json)
from ._fmnist import load_fashion_mnist, read_idx
from ._run import LANGUAGE_PAPER, VISION_PAPER, RunConfig, format_summary, run, run_language, run_vision

__all__ = [
    "CIFAR10_CLASSES", "LOSSY_NOTICE", "VisionArrays", "decode_jpeg_archive", "load_cifar10",
    "read_cifar_batches", "torchvision_cifar10_class", "load_fashion_mnist", "read_idx",
    "RETRAIN_SOURCE_NOTE", "build_persona_split", "read_parlai_self_original", "read_xpersona_json",
    "RunConfig", "VISION_PAPER", "LANGUAGE_PAPER", "run", "run_vision", "run_language", "format_summary",
]
