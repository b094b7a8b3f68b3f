"""Under CI=true a skip is a failure unless tests/conftest.py allow-lists it with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

POLICY = Path(__file__).resolve().parents[1] / "conftest.py"

SUITE = """
import pytest

def test_skips_itself():
    pytest.skip("the gateway's ClusterIP is not reachable")

@pytest.mark.skip(reason="not today")
def test_marked_skip():
    pass

def test_allowed():
    pytest.skip("allowed")

def test_passes():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    policy = POLICY.read_text().replace(
        "ALLOWED_SKIPS: dict[str, str] = {}",
        'ALLOWED_SKIPS: dict[str, str] = {"test_suite.py::test_allowed": "a reason"}',
    )
    assert policy != POLICY.read_text(), "the allow-list's declaration moved: update this test"
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(policy)
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_outside_ci_a_skip_is_a_skip(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=3)


def test_under_ci_a_skip_fails_unless_allowed(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*skipped under CI=true*ClusterIP is not reachable*"])
    assert result.ret != 0
