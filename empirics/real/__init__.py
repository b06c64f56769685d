"""Real-data experiments of the paper (vision on CIFAR-10 / Fashion-MNIST, language on
ConvAI2 personas), run through the one PEFT-ML trainer of :mod:`empirics._trainer`.

Heavy libraries (torch, peft, transformers) are imported only when a family or a run is
built; the data readers need numpy (and Pillow to decode the JPEG CIFAR-10 copy).
"""
from ._cifar import (CIFAR10_CLASSES, LOSSY_NOTICE, VisionArrays, decode_jpeg_archive,
                     load_cifar10, read_cifar_batches, torchvision_cifar10_class)
from ._convai2 import (RETRAIN_SOURCE_NOTE, build_persona_split, read_parlai_self_original,
                       read_xpersona_json)
from ._fmnist import load_fashion_mnist, read_idx

__all__ = [
    "CIFAR10_CLASSES", "LOSSY_NOTICE", "VisionArrays", "decode_jpeg_archive", "load_cifar10",
    "read_cifar_batches", "torchvision_cifar10_class", "load_fashion_mnist", "read_idx",
    "RETRAIN_SOURCE_NOTE", "build_persona_split", "read_parlai_self_original", "read_xpersona_json",
]
