"""The one model-cost cache: counts answered from it, and a damaged one never trusted."""

from __future__ import annotations

import json
import os
import warnings

import pytest

from cnnzoo.analysis import costs
from cnnzoo.analysis.runs import model_costs

LENET = (61_706, 416_520)  # params, MACs of lenet5 at 1x32x32
REQUEST = ("lenet5", {"num_classes": 10, "in_chans": 1}, (1, 32, 32))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder; ``calls`` counts the models counted (not answered by it)."""
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path))
    calls = []
    count = costs.count_costs

    def counting(*request):
        calls.append(request)
        return count(*request)

    monkeypatch.setattr(costs, "count_costs", counting)
    return tmp_path / costs.CACHE_FILE, calls


def _entry(value) -> str:
    key = costs.cost_key(*REQUEST)
    return json.dumps(dict(fingerprint=costs.code_fingerprint(), costs={key: value}))


def test_a_second_ask_is_answered_by_the_cache(cache):
    path, calls = cache
    assert costs.cached_costs([REQUEST]) == [LENET]
    assert len(calls) == 1 and path.is_file()
    assert costs.cached_costs([REQUEST]) == [LENET]
    assert model_costs(dict(type="lenet5", num_classes=10, in_chans=1), (1, 32, 32)) == LENET
    assert len(calls) == 1  # both answered from the file
    assert costs.zoo_costs(["lenet5"]) == {"lenet5": LENET}  # the zoo's entry: one more key
    assert costs.zoo_costs(["lenet5"]) == {"lenet5": LENET}
    assert len(calls) == 2
    assert len(json.loads(path.read_text())["costs"]) == 2


def test_other_arguments_or_sizes_are_other_keys(cache):
    _, calls = cache
    wide, small, big = costs.cached_costs(
        [
            ("lenet5", {"num_classes": 100, "in_chans": 1}, (1, 32, 32)),
            ("resnet20", {}, (3, 32, 32)),
            ("resnet20", {}, (3, 64, 64)),
        ]
    )
    assert wide[0] > LENET[0] and big[1] > 3 * small[1] and len(calls) == 3
    assert costs.cost_key("m", {"a": 1, "b": 2}, (1, 2, 3)) == costs.cost_key(
        "m", {"b": 2, "a": 1}, [1, 2, 3]
    )


def test_a_model_that_does_not_build_costs_none_and_is_not_kept(cache):
    path, _ = cache
    assert costs.cached_costs([("lenet5", {"no_such_argument": 1}, (1, 32, 32))]) == [None]
    assert not path.exists()


def _fifo(path):
    os.mkfifo(path)


def _dangling(path):
    path.symlink_to(path.parent / "nowhere.json")


def _loop(path):
    path.symlink_to(path)


def _device(path):
    path.symlink_to("/dev/zero")


DAMAGE = {
    "not JSON": lambda p: p.write_text("{not json"),
    "not UTF-8": lambda p: p.write_bytes(b"\xff\xfe{}"),
    "nested too deep": lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
    "a list": lambda p: p.write_text("[1, 2]"),
    "costs a list": lambda p: p.write_text(json.dumps(dict(fingerprint="x", costs=[1]))),
    "a count as text": lambda p: p.write_text(_entry(["61706", "416520"])),
    "negative counts": lambda p: p.write_text(_entry([-1, -5])),
    "a huge count": lambda p: p.write_text(_entry([10**30, 5])),
    "fractional counts": lambda p: p.write_text(_entry([1.5, 2.5])),
    "booleans": lambda p: p.write_text(_entry([True, False])),
    "one count": lambda p: p.write_text(_entry([5])),
    "a folder": lambda p: p.mkdir(),
    "a FIFO": _fifo,
    "a link to a device": _device,
    "a dangling link": _dangling,
    "a link loop": _loop,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_cache_is_ignored_and_counted_again(cache, damage):
    path, calls = cache
    DAMAGE[damage](path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert costs.cached_costs([REQUEST]) == [LENET]  # the true counts, never the file's
    assert len(calls) == 1
    if damage != "a dangling link":  # a link to nothing reads as no cache yet: no note
        (note,) = [str(w.message) for w in caught]
        assert note.startswith(f"the model-cost cache {path} is damaged (")
    if damage != "a folder":  # rewritten in place (a folder cannot be replaced by a file)
        assert costs.cached_costs([REQUEST]) == [LENET] and len(calls) == 1
        assert not path.is_symlink() and path.is_file()


def test_an_unreadable_cache_is_counted_again(cache, monkeypatch):
    path, calls = cache
    path.write_text(_entry(list(LENET)))

    def refuse(p):
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr(costs, "read_regular_text", refuse)  # root reads any mode: refused here
    with pytest.warns(UserWarning, match=r"is damaged \(Permission denied\)"):
        assert costs.cached_costs([REQUEST]) == [LENET]
    assert len(calls) == 1


def test_a_cache_of_other_code_is_recounted_without_a_note(cache, recwarn):
    path, calls = cache
    path.write_text(json.dumps(dict(fingerprint="older", costs={})))
    assert costs.cached_costs([REQUEST]) == [LENET] and len(calls) == 1
    assert not recwarn.list
    assert json.loads(path.read_text())["fingerprint"] == costs.code_fingerprint()


def test_a_cache_that_cannot_be_written_costs_only_time(cache, monkeypatch):
    _, calls = cache
    monkeypatch.setenv("CNNZOO_CACHE", "/proc/cnnzoo-cache")
    assert costs.cached_costs([REQUEST]) == [LENET]
    assert costs.cached_costs([REQUEST]) == [LENET] and len(calls) == 2
