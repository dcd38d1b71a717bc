"""Config: presets validate, overrides parse, bad values fail with ConfigError, configs are frozen."""

import dataclasses

import pytest

from toxlab.core.config import PAPER_FRACTIONS, PRESETS, ConfigError, get_preset, override, parse_assignments


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_validate_and_support_every_paper_fraction(name):
    config = get_preset(name)
    assert config.preset == name
    for fraction in PAPER_FRACTIONS:
        assert config.with_fraction(fraction).data.toxic_fraction == fraction


def test_default_preset_is_cpu():
    from toxlab.core.config import DEFAULT_PRESET
    assert DEFAULT_PRESET == "cpu"


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_preset("smoke").train.lr = 1.0


def test_overrides_parse_strings_to_field_types():
    config = get_preset("smoke", parse_assignments(["train.lr=0.01", "model.n_layers=3",
                                                    "train.compile=false", "data.toxic_fraction=0.1"]))
    assert config.train.lr == 0.01 and config.model.n_layers == 3
    assert config.train.compile is False and config.data.toxic_fraction == 0.1


def test_recipe_override_from_text():
    config = get_preset("smoke", {"data.toxic_recipe": "pol:0.5,b:0.5"})
    assert config.data.toxic_recipe == (("pol", 0.5), ("b", 0.5))


@pytest.mark.parametrize("overrides, message", [
    ({"data.toxic_fraction": 0.6}, "outside"),
    ({"data.toxic_fraction": -0.1}, "outside"),
    ({"data.toxic_fraction": "lots"}, "not a valid"),
    ({"data.max_fraction": 0.1, "data.toxic_fraction": 0.2}, "max_fraction"),
    ({"data.toxic_recipe": "pol:0.5,b:0.6"}, "sum to 1"),
    ({"data.toxic_recipe": "biz:1.0"}, "genuine 4chan"),
    ({"data.toxic_recipe": "pol:0.5,b:0.25,reddit:0.25"}, "unknown source.*toxic_recipe"),
    ({"model.d_model": 100, "model.n_heads": 3}, "divisible"),
    ({"model.arch": "gpt2"}, "unknown"),
    ({"model.n_layers": 0}, "positive"),
    ({"train.precision": "fp8"}, "unknown"),
    ({"train.warmup_frac": 1.5}, "[0, 1]"),
    ({"train.batch_size": "eight"}, "not a valid"),
    ({"tokenizer.vocab_size": 100}, "vocab_size"),
    ({"train.nonsense": 1}, "unknown config key"),
    ({"lr": 1}, "unknown config key"),
])
def test_bad_values_raise_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        get_preset("smoke", overrides)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("huge")


def test_type_check_catches_wrong_types_set_in_python():
    config = get_preset("smoke")
    bad = dataclasses.replace(config, model=dataclasses.replace(config.model, n_layers=2.5))
    with pytest.raises(ConfigError, match="should be a int"):
        bad.validate()
    with pytest.raises(ConfigError):
        override(config, {"train.max_steps": True})


def test_config_round_trips_through_json():
    import json
    config = get_preset("cpu")
    assert json.loads(config.to_json())["model"]["n_heads"] == config.model.n_heads
