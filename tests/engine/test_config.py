"""Typed configs: unknown keys refused with a hint, values checked, layers applied in order."""

from __future__ import annotations

import pytest

from dlbox.base.errors import UserError
from dlbox.config import from_dict, resolve
from dlbox.engine.config import EngineConfig


def test_unknown_key_is_refused_with_the_nearest_key():
    with pytest.raises(UserError) as e:
        from_dict(EngineConfig, {"batchsize": 8})
    assert "batchsize" in str(e.value) and "batch_size" in str(e.value)


def test_wrong_type_is_refused():
    with pytest.raises(UserError, match="epochs: expected int"):
        from_dict(EngineConfig, {"epochs": "ten"})


def test_literal_choices_are_enforced():
    with pytest.raises(UserError, match="not a valid value"):
        from_dict(EngineConfig, {"precision": "fp8"})


def test_int_is_accepted_where_float_is_declared():
    from dlbox.env.integrity import IntegrityConfig

    assert from_dict(IntegrityConfig, {"lr": 1}).lr == 1.0


def test_typed_options_override_the_yaml_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 3\nbatch_size: 16\n")
    cfg = resolve(EngineConfig, {"epochs": 7, "seed": None}, str(f))
    assert (cfg.epochs, cfg.batch_size, cfg.seed) == (7, 16, 0)


def test_validation_runs_after_construction():
    with pytest.raises(UserError, match="--device"):
        from_dict(EngineConfig, {"device": "gpu0"})
