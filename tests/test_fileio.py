import stat

import pytest

from cnnzoo.fileio import atomic_write


def test_writes_text_and_bytes_readable_by_all(tmp_path):
    atomic_write(tmp_path / "a.txt", lambda f: f.write("é\n"), binary=False)
    atomic_write(tmp_path / "b.bin", lambda f: f.write(b"\x00\x01"))
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "é\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("old")

    def half_then_fail(f):
        f.write("new, half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, half_then_fail, binary=False)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
