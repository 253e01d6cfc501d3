"""Embedders: facenet-pytorch's Inception-ResNet-v1 state dicts load into ours and give the same embeddings."""

from __future__ import annotations

import pytest
import torch

from dlbox.base.errors import UserError
from dlbox.tasks.face import models


def test_inception_resnet_v1_matches_facenet_pytorch_names_shapes_and_outputs(tmp_path):
    import facenet_pytorch

    torch.manual_seed(0)
    ref = facenet_pytorch.InceptionResnetV1(pretrained=None).eval()
    with torch.no_grad():  # random BatchNorm statistics too, so they must be loaded to match
        for m in ref.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    torch.save(ref.state_dict(), tmp_path / "facenet.pt")
    ours = models.build("inception_resnet_v1").eval()
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    models.load_into(ours, models.read_state_dict(tmp_path / "facenet.pt"), "facenet.pt")
    x = torch.randn(2, 3, 160, 160)  # (N, 3, 160, 160) standardised crops
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() < 1e-5


def test_published_files_classifier_rows_are_dropped(tmp_path):
    state = models.build("tinyface", 16, 0.5).state_dict()
    torch.save({**state, "logits.weight": torch.zeros(8631, 16), "logits.bias": torch.zeros(8631)}, tmp_path / "w.pt")
    assert set(models.read_state_dict(tmp_path / "w.pt")) == set(state)


def test_weights_of_another_architecture_are_a_one_line_error(tmp_path):
    torch.save(models.build("tinyface", 16, 0.5).state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(UserError, match="does not fit InceptionResnetV1: missing conv2d_1a"):
        models.load_into(models.build("inception_resnet_v1"), models.read_state_dict(tmp_path / "tiny.pt"), "tiny.pt")


def test_small_backbones_give_unit_embeddings_at_any_size():
    for arch in ("mobileface", "tinyface"):
        net = models.build(arch, 32, 0.5).eval()
        for size in (32, 48):
            with torch.no_grad():
                e = net(torch.randn(2, 3, size, size))
            assert e.shape == (2, 32) and torch.allclose(e.norm(dim=1), torch.ones(2))
