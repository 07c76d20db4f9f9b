"""The secrets store: atomic, lossless updates of a dotenv secrets file that python-dotenv
(and so ``config.secrets_env``) reads back exactly."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest
from dotenv import dotenv_values
from eventsync.secrets_store import SecretsStore
from hypothesis import given, settings
from hypothesis import strategies as st


def test_update_keeps_comments_and_other_lines_and_replaces_in_place(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text("# kept\nA=1\nexport B='two'\n\nC=3", encoding="utf-8")
    SecretsStore(path).update({"B": "new", "D": "four"})
    text = path.read_text(encoding="utf-8")
    assert text.splitlines() == ["# kept", "A=1", "B='new'", "", "C=3", "D='four'"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_first_write_creates_the_file_and_folder(tmp_path):
    store = SecretsStore(tmp_path / "sub" / "secrets.env")
    assert store.values() == {}
    store.set("TOKEN", "abc")
    assert store.get("TOKEN") == "abc" and store.names() == {"TOKEN"}


def test_invalid_name_is_refused_and_nothing_is_written(tmp_path):
    store = SecretsStore(tmp_path / "secrets.env")
    with pytest.raises(ValueError, match="not a valid secret variable name"):
        store.update({"OK": "1", "NOT OK": "2"})
    assert not store.path.exists()


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00")))
def test_any_value_round_trips_through_python_dotenv(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("s") / "secrets.env"
    SecretsStore(path).set("V", value)
    assert dotenv_values(path, interpolate=False)["V"] == value


@pytest.mark.parametrize("value", ["${HOME}", "a'b\\c", "line one\nline two\n", '"q"', "$x"])
def test_awkward_values_round_trip(tmp_path, value):
    path = tmp_path / "secrets.env"
    SecretsStore(path).update({"A": value, "B": "after"})
    assert dotenv_values(path, interpolate=False) == {"A": value, "B": "after"}


# Each writer is a separate interpreter, as separate `eventsync` processes would be (run with
# ``-c`` so that it need not import this test module).
_WRITER = """
import sys
from eventsync.secrets_store import SecretsStore
store = SecretsStore(sys.argv[1])
index = int(sys.argv[2])
for n in range(20):
    store.set(f"W{index}_{n}", f"value-{index}-{n}")
"""


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "secrets.env"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(i)]) for i in range(4)
    ]
    for process in writers:
        assert process.wait(120) == 0
    values = SecretsStore(path).values()
    assert values == {f"W{i}_{n}": f"value-{i}-{n}" for i in range(4) for n in range(20)}
