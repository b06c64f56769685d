"""Former preparation step of the GPU run; now ``python -m empirics.real.bundle pack``.

``python -m empirics.real.gpu_prepare --dest DIR [--no-vision] [--no-language]`` is kept as
an alias of ``python -m empirics.real.bundle pack --dest DIR ...`` (see
:mod:`empirics.real.bundle`, which also runs, merges and renders Tables 1-3).
"""
from __future__ import annotations

import sys

from .bundle import main as _bundle_main


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return _bundle_main(["pack", *argv])


if __name__ == "__main__":
    sys.exit(main())
