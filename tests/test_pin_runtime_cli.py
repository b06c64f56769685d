"""landscape.runtime.cli's output checks pinned on what they ask the operating system: a folder
is writable only with both write and search permission (os.W_OK | os.X_OK), asked of the
folder itself or of its nearest existing ancestor. The permissions are simulated (os.access
replaced): a test running as root could not see a read-only folder otherwise."""
from __future__ import annotations

import os

import pytest

from landscape.runtime import cli


@pytest.fixture
def no_write_or_search(monkeypatch):
    """os.access as on a folder with read permission only: any mode asking for W_OK or X_OK is refused."""
    asked = []

    def access(path, mode):
        asked.append(mode)
        return not (mode & (os.W_OK | os.X_OK))

    monkeypatch.setattr(cli.os, "access", access)
    return asked


def test_an_existing_folder_needs_write_and_search_permission(tmp_path, no_write_or_search):
    with pytest.raises(cli.UsageError, match="is not writable"):
        cli.check_output_dir(tmp_path)
    assert no_write_or_search == [os.W_OK | os.X_OK]


def test_a_new_folder_or_file_needs_a_writable_searchable_ancestor(tmp_path, no_write_or_search):
    with pytest.raises(cli.UsageError, match=f"folder {tmp_path} is not writable"):
        cli.check_output_dir(tmp_path / "new" / "deeper")
    with pytest.raises(cli.UsageError, match=f"folder {tmp_path} is not writable"):
        cli.check_output_file(tmp_path / "new" / "report.json")
    assert no_write_or_search == [os.W_OK | os.X_OK] * 2


@pytest.mark.parametrize("allowed", [os.W_OK, os.X_OK])
def test_one_of_the_two_permissions_is_not_enough(tmp_path, monkeypatch, allowed):
    monkeypatch.setattr(cli.os, "access", lambda path, mode: not (mode & ~allowed & (os.W_OK | os.X_OK)))
    with pytest.raises(cli.UsageError, match="not writable"):
        cli.check_output_dir(tmp_path)
    with pytest.raises(cli.UsageError, match="not writable"):
        cli.check_output_dir(tmp_path / "new")
    monkeypatch.setattr(cli.os, "access", lambda path, mode: True)
    assert cli.check_output_dir(tmp_path / "new") == tmp_path / "new"
