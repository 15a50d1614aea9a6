"""One build of homework 1 per test session, with short timeouts so failure modes are fast;
and one build of each assignment per session, shared by the files that need them all (hw3
and hw4 train while they build: minutes each)."""

import pytest
from grading_support import FAST, HW1


@pytest.fixture(scope="session")
def hw1_source():
    return HW1


@pytest.fixture(scope="session")
def fast_settings():
    return dict(FAST)


@pytest.fixture(scope="session")
def hw1(tmp_path_factory):
    """``{"out", "student", "bundle", "summary"}`` of hw1 assigned with the FAST settings."""
    from d2lcnn.grading.authoring import assign

    out = tmp_path_factory.mktemp("hw1")
    summary = assign(HW1, out, overrides=FAST, secret="tests")
    return {"out": out, "student": out / "student", "bundle": out / "autograder",
            "summary": summary}


@pytest.fixture(scope="session")
def assignment_builds(tmp_path_factory):
    """``build(source) -> (source, out, summary)``: each instructor source (a path, or its
    stem such as ``"hw3-optimizers"``) assigned once per session, with the default settings
    and a full verification of its solution."""
    from d2lcnn.grading.authoring import assign

    cache = {}

    def build(source):
        if isinstance(source, str):
            source = HW1.parent / f"{source}.py"
        if source.stem not in cache:
            out = tmp_path_factory.mktemp(source.stem)
            cache[source.stem] = source, out, assign(source, out)
        return cache[source.stem]

    return build


@pytest.fixture(autouse=True, scope="session")
def _isolation_default():
    """Where bwrap does not work (a developer's Mac, outside CI) the grading tests grade
    with ``isolation="process"``; the tests of the OS layer itself are skipped there."""
    from grading_support import ISOLATION

    if ISOLATION == "bwrap":
        yield
        return
    from d2lcnn.grading import bundle  # Bundle.load resolves the isolation mode there

    original = bundle.resolve_isolation
    bundle.resolve_isolation = lambda isolation: original(isolation or ISOLATION)
    yield
    bundle.resolve_isolation = original
