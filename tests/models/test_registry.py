"""The model registry: every model's lazy builder resolves, models of every task build from it, and each
task's list of names is the registry's."""

from __future__ import annotations

import pytest
import torch

from dlbox.base.errors import UserError
from dlbox.models import registry


@pytest.mark.parametrize("spec", registry.STATIC, ids=lambda s: s.name)
def test_every_builder_and_loader_string_names_a_callable(spec):
    assert callable(spec.builder_fn())


@pytest.mark.parametrize("task", sorted(registry.LOADERS))
def test_every_task_loader_resolves(task):
    assert callable(registry.resolve_target(registry.LOADERS[task]))


@pytest.mark.parametrize("name, args, classes", [
    ("tinydet", (3, 320), None),
    ("tinyface", (), None),
    ("resnet18", (7,), 7),
])  # fmt: skip
def test_models_of_each_task_build_from_the_registry(name, args, classes):
    model = registry.build(name, *args)
    assert isinstance(model, torch.nn.Module)
    if classes:
        head = model.get_submodule(registry.get(name).head)
        assert head.out_features == classes


def test_the_tasks_lists_are_the_registrys():
    from dlbox.tasks.classify import models as classify_models
    from dlbox.tasks.detect import config as detect_config
    from dlbox.tasks.face import models as face_models

    assert detect_config.MODELS == registry.names("detect") and detect_config.MODELS[0] == "tinydet"
    assert face_models.ARCHS == registry.names("face")
    assert classify_models.list_models() == list(registry.torchvision_classifiers())
    assert registry.get("fasterrcnn_resnet50_fpn").label_offset == 1 and registry.get("slim:vgg").num_classes == 1001


def test_an_unknown_name_is_one_line_with_near_names():
    with pytest.raises(UserError, match="unknown detector 'tinydett'") as e:
        registry.get("tinydett", "detect")
    assert "tinydet" in e.value.hint
