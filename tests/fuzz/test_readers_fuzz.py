"""Property-based fuzzing of every reader entry point (Hypothesis): whatever the bytes, only the
project's error class escapes, no input hangs, and none allocates out of proportion to its size.

A few seconds per target in CI; ``MODALFUSE_FUZZ_EXAMPLES=2000`` runs longer. ``bench/fuzz.py`` runs
the same targets for minutes over mutations of the real files in ``../shared``.
"""

from __future__ import annotations

import functools
import os
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from targets import SUFFIX, TARGETS, mutate, mutate_payloads, outcome, small_seeds  # noqa: E402

EXAMPLES = int(os.environ.get("MODALFUSE_FUZZ_EXAMPLES", "40"))
# The same inputs on every plain run, so a test run (CI) is repeatable; MODALFUSE_FUZZ_RANDOM=1 explores
# new inputs (bench/fuzz.py explores for minutes). A failure found that way becomes a regression test.
DERANDOMIZE = not os.environ.get("MODALFUSE_FUZZ_RANDOM")
SECONDS_PER_INPUT = 5.0  # a hang is an input that takes longer than this (inputs are < 100 kB)


@functools.cache
def _seeds() -> dict[str, list[bytes]]:
    # module-level (not a fixture) so Hypothesis does not print 100 kB of seeds with each failure
    return small_seeds(Path(tempfile.mkdtemp(prefix="modalfuse-fuzz-seeds-")))


def _check(target: str, data: bytes, folder: Path) -> None:
    path = folder / f"input{SUFFIX[target]}"
    path.write_bytes(data)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result = outcome(target, str(path))
    finally:
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert not result.startswith("other"), f"{target}: {result} for input {data[:200]!r}..."
    assert seconds < SECONDS_PER_INPUT, f"{target}: {seconds:.1f}s for a {len(data)}-byte input"
    # numpy and Python allocations are traced (HDF5's own are not): proportional to the input
    assert peak < 64 * 2**20 + 200 * len(data), f"{target}: {peak / 2**20:.0f} MB for a {len(data)}-byte input"


def _mutations():
    return st.tuples(st.integers(0, 2), st.integers(0, 2**32 - 1), st.integers(1, 6))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_seeds_are_valid(target, tmp_path):
    for i, data in enumerate(_seeds()[target]):
        path = tmp_path / f"s{i}{SUFFIX[target]}"
        path.write_bytes(data)
        assert outcome(target, str(path)) == "ok"


@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=DERANDOMIZE)
@given(mutation=_mutations())
def test_mutated_inputs_raise_only_project_errors(target, tmp_path_factory, mutation):
    which, seed, n_ops = mutation
    base = _seeds()[target][which % len(_seeds()[target])]
    data = mutate(base, random.Random(seed), n_ops)
    _check(target, data, tmp_path_factory.mktemp("in", numbered=True))


@pytest.mark.parametrize("target", ["tfrecord", "yt8m_records", "pickle", "config"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=DERANDOMIZE)
@given(data=st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_project_errors(target, tmp_path_factory, data):
    _check(target, data, tmp_path_factory.mktemp("raw", numbered=True))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=DERANDOMIZE)
@given(text=st.text(max_size=300))
def test_arbitrary_yaml_text_raises_only_config_errors(tmp_path_factory, text):
    _check("config", text.encode("utf-8", "surrogatepass"), tmp_path_factory.mktemp("yaml", numbered=True))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=DERANDOMIZE)
@given(mutation=_mutations())
def test_mutated_record_payloads_with_valid_crcs_raise_only_project_errors(tmp_path_factory, mutation):
    which, seed, _ = mutation
    seeds = _seeds()["yt8m_records"]
    data = mutate_payloads(seeds[which % len(seeds)], random.Random(seed))
    _check("yt8m_records", data, tmp_path_factory.mktemp("payload", numbered=True))
