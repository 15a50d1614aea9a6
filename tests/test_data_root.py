"""Where the benchmark data sets live: the root argument, $D2LCNN_DATA, the checkout's data/
folder when the package runs from a checkout, else the per-user data folder."""

import sys
from pathlib import Path

import pytest

import d2lcnn
from d2lcnn.data.__main__ import main
from d2lcnn.data.download import ENV_VAR, data_root, locate_data_root, user_data_dir

REPO = Path(__file__).resolve().parents[1]


def fake_checkout(tmp_path: Path, project: str = "d2lcnn", data: bool = True) -> Path:
    """A folder laid out like a clone: pyproject.toml, d2lcnn/ and (optionally) data/."""
    repo = tmp_path / "clone"
    (repo / "d2lcnn").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(f'[project]\nname = "{project}"\nversion = "0"\n')
    if data:
        (repo / "data").mkdir()
    return repo


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No $D2LCNN_DATA, and a home folder of our own for the per-user folder."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_a_checkout_uses_its_data_folder(no_env, tmp_path):
    repo = fake_checkout(tmp_path)
    where = locate_data_root(package_dir=repo / "d2lcnn")
    assert where.path == (repo / "data").resolve()
    assert "checkout" in where.reason and str(repo.resolve()) in where.reason


def test_these_tests_run_from_a_checkout(no_env):
    assert Path(d2lcnn.__file__).resolve().parent == REPO / "d2lcnn"
    assert data_root() == REPO / "data"


@pytest.mark.parametrize("layout", ["site-packages", "other project", "no data folder"])
def test_outside_a_checkout_the_per_user_folder(no_env, tmp_path, layout):
    if layout == "site-packages":  # pip install .: d2lcnn/ sits in site-packages, no data/
        package_dir = tmp_path / "lib" / "site-packages" / "d2lcnn"
        package_dir.mkdir(parents=True)
        (package_dir.parent / "data").mkdir()  # what the old rule would have used
    else:
        package_dir = fake_checkout(
            tmp_path, project="someone-else" if layout == "other project" else "d2lcnn",
            data=layout != "no data folder",
        ) / "d2lcnn"
    where = locate_data_root(package_dir=package_dir)
    assert where.path == user_data_dir().resolve()
    assert "per-user" in where.reason and ENV_VAR in where.reason


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the XDG rule is for Unix")
def test_per_user_folder_follows_xdg(no_env, monkeypatch, tmp_path):
    assert user_data_dir() == tmp_path / "home" / ".local" / "share" / "d2lcnn"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert user_data_dir() == tmp_path / "xdg" / "d2lcnn"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # the spec says: ignore it
    assert user_data_dir() == tmp_path / "home" / ".local" / "share" / "d2lcnn"


def test_environment_variable_and_argument_override(no_env, monkeypatch, tmp_path):
    repo = fake_checkout(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "mine"))
    for package_dir in (repo / "d2lcnn", tmp_path / "site-packages" / "d2lcnn"):
        where = locate_data_root(package_dir=package_dir)
        assert where == ((tmp_path / "mine").resolve(), "$D2LCNN_DATA")
    assert locate_data_root(tmp_path / "arg", package_dir=repo / "d2lcnn") == (
        (tmp_path / "arg").resolve(), "the root argument")
    assert data_root() == (tmp_path / "mine").resolve()


def test_list_says_which_folder_and_why(no_env, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "mine"))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"data folder: {(tmp_path / 'mine').resolve()}\n" in out
    assert "chosen because: $D2LCNN_DATA" in out


def test_missing_file_error_names_the_reason(no_env, monkeypatch, tmp_path):
    from d2lcnn.data import load_mnist

    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"from \$D2LCNN_DATA"):
        load_mnist()
