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
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_warns_and_resolves_to_the_new_objects(old):
    new, names = MOVED[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new.rsplit(".", 1)[0]):
        mod = importlib.import_module(old)
    target = importlib.import_module(new)
    for name in names:
        assert getattr(mod, name) is getattr(target, name), name
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018 - a typo must not resolve to something


def test_from_import_of_an_old_path():
    sys.modules.pop("landscape.executor", None)
    with pytest.warns(DeprecationWarning):
        from landscape.executor import ResultStore, atomic_write_text  # noqa: F401
    from landscape.runtime.atomic import atomic_write_text as new_write
    from landscape.runtime.store import ResultStore as NewStore

    assert ResultStore is NewStore and atomic_write_text is new_write
