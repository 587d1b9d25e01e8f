"""Every test gets its own root folder for stashes (``HASHSTASH_ROOT_DIR``)."""

import os
import shutil

import pytest


@pytest.fixture(autouse=True)
def root_dir(tmp_path, monkeypatch):
    root = tmp_path / "stashes"
    monkeypatch.setenv("HASHSTASH_ROOT_DIR", str(root))
    return root


@pytest.fixture
def cli():
    """The Rust ``hashstash`` command line (``$HASHSTASH_CLI``, else on PATH)."""
    path = os.environ.get("HASHSTASH_CLI") or shutil.which("hashstash")
    if not path:
        if os.environ.get("HASHSTASH_REQUIRE_CLI"):
            pytest.fail("HASHSTASH_CLI is not set and hashstash is not on PATH")
        pytest.skip("the hashstash command line is not built")
    return path
