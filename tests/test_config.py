import pytest

from pipelines import text
from pipelines.config import config_hash, dump_config, from_dict, load_config


def test_every_registered_stage_has_a_config_section_named_after_it():
    config = text.Config()
    for stage in text.STAGES:
        assert isinstance(getattr(config, stage.name).enabled, bool)
    # the steps that need user input (a model, evaluation sets, quotas, a server) are off by default
    off = {stage.name for stage in text.STAGES if not getattr(config, stage.name).enabled}
    assert off == {"line_dedup", "quality_model", "decontaminate", "balance", "llm_guard"}


def test_yaml_round_trip_gives_an_equal_config_and_hash(tmp_path):
    path = tmp_path / "text.yaml"
    path.write_text(dump_config(text.Config()))
    loaded = load_config(text.Config, path)
    assert loaded == text.Config()
    assert config_hash(loaded) == config_hash(text.Config())


def test_overrides_change_the_hash_and_typos_fail_loudly(tmp_path):
    changed = from_dict(text.Config, {"language": {"min_score": 0.5, "allowed_languages": ["en", "de"]}})
    assert changed.language.allowed_languages == ("en", "de")
    assert config_hash(changed) != config_hash(text.Config())
    with pytest.raises(ValueError, match="min_scor"):
        from_dict(text.Config, {"language": {"min_scor": 0.5}})
