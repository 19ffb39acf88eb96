"""Property-based tests: malformed ``--cfg-options``, configs with wrong types and missing
keys, random model and dataset names. Every case ends either with one error line and exit
status 2, or with a run that gets as far as its first optimizer step; never a traceback.

The CLI runs in-process (``cnnzoo.cli.main``); a successful case is stopped after its first
training step by a hook (training further adds nothing to what is tested here). The network
is cut (downloads fail at once) and the data root is an empty folder.
"""

from __future__ import annotations

import collections
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnzoo.config import dotted_keys as _dotted_keys
from cnnzoo.config import load_config
from cnnzoo.models import list_models
from fuzzing import examples

FUZZ = settings(max_examples=examples(60))  # the rest comes from the profile (tests/fuzzing.py)
OUTCOMES: collections.Counter = collections.Counter()

# Keys whose valid values make a case slow without testing anything more: compiling, and
# spawning hundreds of loader workers.
SLOW_KEYS = {"compile", "data.num_workers"}
KEYS = [k for k in _dotted_keys(load_config(None).to_dict()) if k not in SLOW_KEYS]
MODELS = list_models()
DATASETS = ["digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "imagefolder"]

# Values as they are typed after KEY=: numbers (finite, infinite, huge), booleans, None,
# lists and tuples (balanced or not), strings, names.
VALUE_TEXT = st.one_of(
    st.sampled_from(
        ["None", "True", "false", "0", "-1", "1", "3", "2.5", "1e309", "-1e309", "nan", "inf",
         "1000000", "10" * 15, "[1,2]", "(1,2)", "[", "]", "[(", "((1,2)", "[[[]]]", "{}", "{a:1}",
         "'quoted'", "abc", "", ",", "a,b", "dict(type=x)", "[dict(type=RandomCrop,size=32)]",
         "cpu", "cuda", "cuda:7", "auto", "val/top1", "min", "max", "SGD", "AdamW", "StepLR",
         "mse", "../../etc", "/dev/null"]
    ),
    st.integers(-1000, 1000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(MODELS + DATASETS),
    st.text(max_size=12),
)  # fmt: skip


def _mutate(key: str, how: int, noise: str) -> str:
    if how == 0:
        return key
    if how == 1:
        return key[:-1] or noise  # a typo
    if how == 2:
        return f"{key}.{noise or 'x'}"  # one level too deep
    if how == 3:
        return f"{key}..{noise}"
    return f"{noise}.{key}"


KEY_TEXT = st.one_of(
    st.builds(_mutate, st.sampled_from(KEYS), st.integers(0, 4), st.text(max_size=4)),
    st.text(max_size=15),
)
OPTION = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", KEY_TEXT, VALUE_TEXT),
    st.text(max_size=20),  # anything at all, often without '='
)


def _tally(kind: str, outcome: str, err: str) -> None:
    OUTCOMES[(kind, outcome)] += 1


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes(request):
    """How the cases of this module ended, printed when its tests are done in whatever order
    or worker they ran (shown with ``pytest -s``; the fuzz run in the README uses it)."""
    yield
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        for (kind, outcome), n in sorted(OUTCOMES.items()):
            print(f"fuzz: {kind:22s} {outcome:12s} {n}")


@pytest.mark.fuzz
@settings(FUZZ, max_examples=examples(100))
@given(options=st.lists(OPTION, min_size=1, max_size=3))
def test_malformed_cfg_options_end_in_one_line_or_a_run(cli, tmp_path, options):
    outcome, err = cli(
        ["train", "--work-dir", str(tmp_path / "runs"), "--quiet", "--cfg-options", *options]
    )
    _tally("cfg-options", outcome, err)


@pytest.mark.parametrize(
    ("argv", "outcome", "shown"),
    [  # found by the fuzz run: argparse quoted the carriage return, splitting its error line
        (["train", "--cfg-options", "", "-\r0"], "usage error", "unrecognized arguments: -\\r0"),
        (["runs", "no\rsuch"], "error", "no\\rsuch: no such folder"),
        (["test", "no\nsuch\u2028run"], "error", "no\\nsuch\\u2028run is neither a run"),
    ],
)
def test_line_breaks_in_arguments_are_escaped_in_the_error_line(cli, argv, outcome, shown):
    got, err = cli(argv)
    assert got == outcome and shown in err


def _parent(cfg: dict, key: str) -> tuple[object, str]:
    """The container that holds the last part of the dotted ``key`` (None if there is none)."""
    *parents, last = key.split(".")
    node: object = cfg
    for p in parents:
        if isinstance(node, list) and p.isdigit() and int(p) < len(node):
            node = node[int(p)]
        elif isinstance(node, dict):
            node = node.get(p)
        else:
            return None, last
    return node, last


def _config_with_faults(
    base: dict, deletions: list[str], replacements: list[tuple[str, object]]
) -> dict:
    cfg = json.loads(json.dumps(base))
    for key in deletions:
        node, last = _parent(cfg, key)
        if isinstance(node, dict):
            node.pop(last, None)
    for key, value in replacements:
        node, last = _parent(cfg, key)
        if isinstance(node, dict):
            node[last] = value
        elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
    return cfg


JSON_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-1000, 1000),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
        st.sampled_from(MODELS[:5] + DATASETS),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
BASE = json.loads(json.dumps(load_config(None).to_dict()))
BASE_KEYS = [k for k in _dotted_keys(BASE) if k not in SLOW_KEYS]


@pytest.mark.fuzz
@FUZZ
@given(
    deletions=st.lists(st.sampled_from(BASE_KEYS), max_size=3),
    replacements=st.lists(st.tuples(st.sampled_from(BASE_KEYS), JSON_VALUE), max_size=3),
    fmt=st.sampled_from(["json", "yaml"]),
)
def test_config_files_with_wrong_types_and_missing_keys(
    cli, tmp_path, deletions, replacements, fmt
):
    cfg = _config_with_faults(BASE, deletions, replacements)
    path = tmp_path / f"fuzzed.{fmt}"
    path.write_text(json.dumps(cfg) if fmt == "json" else yaml.safe_dump(cfg))
    outcome, err = cli(["train", str(path), "--work-dir", str(tmp_path / "runs"), "--quiet"])
    _tally("config file", outcome, err)


@pytest.mark.fuzz
@FUZZ
@given(
    text=st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
)
def test_unparsable_config_files(cli, tmp_path, text):
    for suffix in ("json", "yaml"):
        path = tmp_path / f"broken.{suffix}"
        path.write_text(text)
        outcome, err = cli(["train", str(path), "--work-dir", str(tmp_path / "runs"), "--quiet"])
        _tally("unparsable file", outcome, err)


def _misspell(name: str, i: int, c: str) -> str:
    i %= len(name) + 1
    return name[:i] + c + name[i + 1 :]


NAME = st.one_of(
    st.builds(
        _misspell, st.sampled_from(MODELS + DATASETS), st.integers(0, 30), st.text(max_size=1)
    ),
    st.sampled_from(MODELS + DATASETS).map(str.upper),
    st.text(max_size=15),
)


@pytest.mark.fuzz
@settings(FUZZ, max_examples=examples(100))
@given(name=NAME, where=st.sampled_from(["model.type", "data.type", "summary"]))
def test_random_model_and_dataset_names(cli, tmp_path, name, where):
    if where == "summary":
        argv = ["summary", name]
    else:
        argv = [
            "train",
            "--work-dir",
            str(tmp_path / "runs"),
            "--quiet",
            "--cfg-options",
            f"{where}={name}",
        ]
    outcome, err = cli(argv)
    _tally(f"name via {where}", outcome, err)
