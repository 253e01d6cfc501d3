"""`--weights hub:NAME`: dlbox.models.weights.resolve_weights through a loopback mirror, its errors, and `dlbox classify train`
fine-tuning from weights the test serves as hub:resnet18."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlbox.base.errors import UserError
from dlbox.hub import catalog
from dlbox.models.weights import resolve_weights
from tests.hub.conftest import entry_toml, payload, sha256


def test_resolve_weights_fetches_from_a_mirror_and_then_uses_the_cache(server, extra_catalog, monkeypatch):
    data = payload(40_000, seed=21)
    server.files["/mirror/tiny-net/tiny-net-0123.pth"] = data
    extra_catalog(entry_toml("tiny-net", [{"name": "tiny-net-0123.pth", "url": "https://example.invalid/tiny.pth",
                                           "sha256": sha256(data)}], kind="model", loader="torchvision:resnet18"))  # fmt: skip
    monkeypatch.setenv("DLBOX_MIRROR", server.url("/mirror"))
    path = resolve_weights("hub:tiny-net").path
    assert path.read_bytes() == data and path.name == "tiny-net-0123.pth"
    assert resolve_weights("hub:tiny-net").path == path
    assert len(server.requests) == 1  # the second call came from the cache


def test_resolve_weights_offline_names_the_file_and_where_to_put_it(monkeypatch, hub_home):
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    with pytest.raises(UserError) as e:
        resolve_weights("hub:resnet18")
    e_ = catalog.get("resnet18")
    assert "resnet18-f37072fd.pth of hub:resnet18 is not in the cache" in str(e.value)
    assert str(hub_home / "hub" / "resnet18" / "f37072fd" / "resnet18-f37072fd.pth") in str(e.value)
    assert e_.files[0].url in str(e.value) and "dlbox hub add resnet18 --file PATH" in str(e.value)


@pytest.mark.parametrize("spec, fragment", [
    ("hub:resnt18", "did you mean 'resnet18'"),
    ("hub:mnist", "is a dataset, not model weights"),
    ("hub:slim-inception_v2", "not supported .*no Inception V2"),
    ("resnet18", "'resnet18' does not exist"),  # not a scheme: a path
    ("hub:", "is not a hub reference"),
])  # fmt: skip
def test_resolve_weights_explains_what_it_cannot_resolve(spec, fragment):
    with pytest.raises(UserError, match=fragment):
        resolve_weights(spec)


def test_classify_train_fine_tunes_from_hub_resnet18_served_by_the_local_mirror(server, extra_catalog, cli, tmp_path,
                                                                                monkeypatch):  # fmt: skip
    """The issue's end-to-end check: `dlbox classify train --weights hub:resnet18 --fine-tune`, the file served
    by a loopback mirror. The test's own state dict stands in for torchvision's (override = true), and a
    frozen backbone lets us check that exactly those weights were loaded."""
    import torchvision

    from dlbox.data.samples import write_sample

    torch.manual_seed(0)
    state = torchvision.models.resnet18(num_classes=1000).state_dict()
    blob = tmp_path / "resnet18-test.pth"
    torch.save(state, blob)
    data = blob.read_bytes()
    server.files["/mirror/resnet18/resnet18-test.pth"] = data
    extra_catalog(entry_toml(
        "resnet18", [{"name": "resnet18-test.pth", "sha256": sha256(data), "url": "https://example.invalid/r.pth"}],
        kind="model", loader="torchvision:resnet18", architecture="resnet18", override=True, num_classes=1000,
        transforms={"resize_size": 40, "crop_size": 32, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    ))  # fmt: skip
    monkeypatch.setenv("DLBOX_MIRROR", server.url("/mirror"))
    write_sample("shapes", tmp_path / "shapes", n_per_class=12, classes=3)
    res = cli("classify", "train", "--data", tmp_path / "shapes", "--model", "resnet18", "--weights", "hub:resnet18",
              "--fine-tune", "--freeze-backbone", "--epochs", "1", "--batch-size", "8", "--augment", "none",
              "--runs-dir", tmp_path / "runs", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert server.hits("/mirror/resnet18/resnet18-test.pth") == [None]
    ckpt = torch.load(Path(res.json()["run_dir"]) / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["task_state"]["img_size"] == 32  # the hub entry's crop size
    trained = ckpt["model"]
    for key in ("conv1.weight", "layer4.1.conv2.weight", "layer2.0.bn1.running_mean"):
        assert torch.equal(trained[key], state[key]), key  # the frozen backbone is the served file's
    assert trained["fc.weight"].shape == (3, 512)  # a new head for the 3 classes
