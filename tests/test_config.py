"""Config: one schema, presets validated on load, unknown keys rejected."""

import pytest

from lipdub import LipdubError
from lipdub.infra.config import SyncMode, load_config, preset_names


def test_every_preset_loads_and_validates():
    for name in preset_names():
        cfg = load_config(preset=name)
        assert cfg.preset == name


def test_user_file_overrides_preset_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("preset: fast\nremux:\n  sync_mode: loop\nblend:\n  crf: 20\n")
    cfg = load_config(path)
    assert cfg.preset == "fast"
    assert cfg.remux.sync_mode is SyncMode.loop
    assert cfg.blend.crf == 20
    assert cfg.blend.preset == "ultrafast"  # from the fast preset


def _load_error(path, text: str) -> str:
    """The message of the error that loading `text` from `path` raises (checked: one line, naming the file)."""
    path.write_text(text)
    with pytest.raises(LipdubError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_unknown_key_is_a_one_line_error_naming_the_file(tmp_path):
    assert "blend.crff" in _load_error(tmp_path / "bad.yaml", "blend:\n  crff: 20\n")


def test_unknown_preset_is_rejected():
    with pytest.raises(LipdubError, match="unknown preset"):
        load_config(preset="nope")


def test_section_hash_changes_only_with_its_section():
    a = load_config()
    b = load_config(blend={"crf": 23})
    assert a.section_hash("blend") != b.section_hash("blend")
    assert a.section_hash("generate") == b.section_hash("generate")


def test_one_setting_hashes_apart_from_the_rest_of_its_section():
    a = load_config()
    capped = load_config(generate={"max_canonical_size": 192})
    other = load_config(generate={"jump_cost": 0.9})
    assert a.section_hash("generate.max_canonical_size") != capped.section_hash("generate.max_canonical_size")
    assert a.section_hash("generate.max_canonical_size") == other.section_hash("generate.max_canonical_size")
    assert a.section_hash("generate") != other.section_hash("generate")


def test_a_lowest_crf_above_the_crf_is_a_one_line_error_naming_the_file(tmp_path):
    assert "min_crf (14) is above crf (12)" in _load_error(tmp_path / "c.yaml", "blend:\n  crf: 12\n  min_crf: 14\n")
