"""``python -m empirics.real vision|language ...`` (same as ``python -m empirics vision|language``)."""
import sys

from .cli import main

sys.exit(main())
