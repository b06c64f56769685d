"""Former preparation step of the GPU run; now ``python -m empirics.real.bundle pack``.

``python -m empirics.real.gpu_prepare --dest DIR [--no-vision] [--no-language]`` is kept as
an alias of ``python -m empirics.real.bundle pack --dest DIR ...`` (see
:mod:`empirics.real.bundle`, which also runs, merges and renders Tables 1-3).  Like every
command of the toolkit it exits through :func:`landscape.runtime.exits.cli_main`: bad
input 2 (the bundle's one-line refusal), a failing machine 3, Ctrl-C 130, each with one
line on stderr.
"""
from __future__ import annotations

import sys

PROG = "python -m empirics.real.gpu_prepare"


def _main(argv=None) -> int:
    from .bundle import _main as bundle_main

    argv = list(sys.argv[1:] if argv is None else argv)
    # --dest is this alias's documented flag: passed on as the bundle's --out, so that
    # the bundle does not warn about it and an error stays one line
    argv = ["--out" if a == "--dest" else "--out=" + a[7:] if a.startswith("--dest=") else a for a in argv]
    return bundle_main(["pack", *argv])


def main(argv=None) -> int:
    from landscape.runtime.exits import cli_main

    from .bundle import BundleError

    return cli_main(PROG, _main, argv, input_errors=(BundleError,))


if __name__ == "__main__":
    sys.exit(main())
