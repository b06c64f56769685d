"""Kill command of the mutation run: ``python -m theory --scale quick`` that stops at the
first failing check (exit 1), so a killed mutant costs one check instead of the registry.
Checks run in registry order; a check that raises counts as failed (as in ``theory.run``).
"""
import sys

from theory import REGISTRY, run


def main() -> int:
    for check in REGISTRY:
        if not run([check.id], seed=0, scale="quick").passed:
            print(f"FAILED: {check.id}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
