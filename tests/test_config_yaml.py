"""User YAML (``--set`` values, ``--param`` values, config files): safe, alias-free, or a
configuration error naming the option or file."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenesense.cli.common import parse_params
from scenesense.config import ConfigError, load_yaml, parse_override


@settings(max_examples=300, deadline=None)
@given(key=st.text(max_size=20), value=st.text(max_size=40))
def test_set_values_parse_or_are_configuration_errors(key, value):
    pair = f"{key}={value}"
    for parse in (parse_override, lambda p: parse_params([p])):
        try:
            parse(pair)
        except ConfigError as err:
            assert str(err).strip()


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system [id]",
        "!!python/name:os.system",
        "[1,",
        "{a: ",
        "&a [*a]",
        "!!binary x",
    ],
)
def test_unsafe_or_broken_set_values_are_refused_naming_the_option(value):
    with pytest.raises(ConfigError, match=r"--set trainer\.lr=.*not a valid YAML value"):
        parse_override(f"trainer.lr={value}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: !!python/object/apply:os.system [id]\n", "invalid YAML .*python/object/apply:os.system"),
        ("a: &a [1]\nb: *a\n", r"invalid YAML \(aliases \(\*name\) are not accepted"),
        ("- 1\n", "expected a mapping at the top level"),
    ],
)
def test_config_files_are_plain_safe_yaml(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_yaml(path)


def test_a_binary_config_file_is_a_configuration_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError, match="c.yaml: not a UTF-8 text file"):
        load_yaml(path)


def test_a_broken_param_value_names_the_param(tmp_path, capsys):
    from scenesense.cli import main

    argv = ["extract", "--ravdess", str(tmp_path), "--features", "audio=egemaps", "--param", "audio.x=[1,",
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("scenesense: error: --param audio.x='[1,': not a valid YAML value")
