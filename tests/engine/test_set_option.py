"""`--set key=value` parsing (shared by generation and training)."""

import pytest

from helios_core.errors import ConfigError
from helios_core.presets import parse_set_option


@pytest.mark.parametrize(("item", "expected"), [
    ("optim.lr=4e-4", ("optim.lr", 4e-4)),  # YAML 1.1 alone would read this as the text '4e-4'
    ("optim.lr=1E+3", ("optim.lr", 1000.0)),
    ("sampler.steps=[2,2,2]", ("sampler.steps", [2, 2, 2])),
    ("x=[1e-3, 0.5]", ("x", [1e-3, 0.5])),
    ("prompt.negative_prompt=e5", ("prompt.negative_prompt", "e5")),  # text stays text
])
def test_values_parse_as_a_user_means_them(item, expected):
    assert parse_set_option(item) == expected


def test_missing_equals_sign_is_a_config_error():
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_option("optim.lr")
