"""Hypothesis profiles of the property-based tests (loaded by tests/conftest.py).

``ci`` (the default): every run draws the same examples (derandomized, no example
database), so CI cannot fail at random and a red run reproduces.

``fuzz``: ``HYPOTHESIS_PROFILE=fuzz python -m pytest -m fuzz -p no:xdist -o timeout=0``
draws fresh random examples, 50 times as many (``HYPOTHESIS_FUZZ_SCALE=N`` for N times; a test
then runs for many minutes, hence no timeout), keeps failing ones in ``.hypothesis/examples``
and replays them first next time. Turn what it finds into a fixed test case
(tests/faults/test_untrusted.py, test_bad_data.py, ... hold the ones found so far).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
FUZZ_SCALE = int(os.environ.get("HYPOTHESIS_FUZZ_SCALE") or 50)
_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile(
    "fuzz",
    derandomize=False,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
    **_COMMON,
)
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """How many examples a property test draws: ``n`` in CI, :data:`FUZZ_SCALE` times that
    under ``fuzz``."""
    return n * FUZZ_SCALE if PROFILE == "fuzz" else n
