"""Old import paths of moved modules keep working for one release, with a DeprecationWarning.

Each old path must warn on import and hand out the very objects of the new home (not
copies), so ``isinstance`` checks and monkeypatching through either path agree.
"""
import importlib
import sys

import pytest

#: old module path -> (new module path, names that must resolve to the new module's objects)
MOVED = {
    "landscape.executor": ("landscape.runtime.executor",
                           ["Unit", "Resources", "ResultStore", "ConfigMismatch", "LocalExecutor", "run_units",
                            "get_executor", "add_executor_arguments", "executor_from_args", "encode", "decode",
                            "config_digest", "atomic_write", "atomic_write_text", "default_file_mode"]),
    "landscape._certificates": ("landscape.certificates",
                                ["Certificate", "taylor_certificate", "epsilon_net_certificate", "verify_certificate",
                                 "VERDICT_SPURIOUS", "ARB_PRECISION", "polish_critical_point", "find_witness"]),
    "landscape._rump": ("landscape.certificates.taylor_fp",
                        ["fp_taylor_certificate", "verify_fp_taylor", "FP_TAYLOR_MAX_DIM", "embed_spurious_instance"]),
    "landscape._outdir": ("landscape.runtime.outdir", ["ReportWriter", "prepare_out_dir", "REPORT_NAME"]),
    "landscape._safe_load": ("landscape.runtime.safe_load", ["read_arrays", "MAX_ARRAY_BYTES", "MAX_JSON_BYTES"]),
    "landscape._cli_checks": ("landscape.runtime.cli", ["OneLineParser", "UsageError", "nonneg_int", "positive_int"]),
    "landscape._version": ("landscape.runtime.version", ["__version__", "_from_pyproject"]),
    "landscape._ray_executor": ("landscape.runtime.ray_executor", ["RayExecutor", "driver_import_path"]),
}

#: private helpers of an old module resolve to the module that now holds them
PRIVATE = {
    "landscape._certificates": {"_taylor_decide": "landscape.certificates.common",
                                "_arb_state": "landscape.certificates.enclosures",
                                "_net_decide": "landscape.certificates.net",
                                "_taylor_bounds": "landscape.certificates.taylor_arb"},
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_warns_and_resolves_to_the_new_objects(old):
    new, names = MOVED[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new):
        mod = importlib.import_module(old)
    target = importlib.import_module(new)
    for name in names:
        assert getattr(mod, name) is getattr(target, name), name
    for name, home in PRIVATE.get(old, {}).items():
        assert getattr(mod, name) is getattr(importlib.import_module(home), name), name
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018 - a typo must not resolve to something
    assert set(names) <= set(dir(mod))


def test_from_import_of_an_old_path():
    sys.modules.pop("landscape.executor", None)
    with pytest.warns(DeprecationWarning):
        from landscape.executor import ResultStore, atomic_write_text  # noqa: F401
    from landscape.runtime.atomic import atomic_write_text as new_write
    from landscape.runtime.store import ResultStore as NewStore

    assert ResultStore is NewStore and atomic_write_text is new_write
