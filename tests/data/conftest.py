"""Writers of tiny datasets in the real on-disk formats, and an isolated cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNZOO_DATA", raising=False)
