"""The embedder's export through the one loader: any batch size, the run's embeddings, an export with the old
``dlbox_face`` metadata still loads, and `predictor()` answers as `face detect` / `face compare` do."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlbox.base.errors import UserError
from dlbox.runtime.exported import load_exported
from dlbox.tasks.face.export import export
from dlbox.tasks.face.inference import load_embedder, predictor
from tests.conftest import run_main


def test_the_export_loads_through_the_one_loader_and_takes_any_batch(trained, strangers, tmp_path):
    run = trained["run_dir"]
    res = export(run, out=str(tmp_path / "face.onnx"))
    ex = load_exported(res["file"])
    assert (ex.task, ex.meta["model_name"], ex.meta["dynamic_batch"], ex.inputs[0].shape) == ("face", "tinyface", True, (-1, 3, 32, 32))
    assert ex.meta["extra"]["threshold"] == res["threshold"]
    crops = [im for im in sorted((strangers / "person_000").iterdir())][:3]
    from PIL import Image

    images = [Image.open(f).convert("RGB") for f in crops]
    eager, onnx_emb = load_embedder(run), load_embedder(res["file"])
    want = eager.embed_images(images)
    batch = onnx_emb.embed_images(images)
    singles = np.concatenate([onnx_emb.embed_images([im]) for im in images])
    assert batch.shape == (3, 64)
    assert np.abs(batch - want).max() < 1e-4 and np.abs(batch - singles).max() < 1e-5


def test_an_export_with_the_old_face_metadata_gives_the_same_embeddings(trained, strangers, tmp_path):
    import onnx

    run = trained["run_dir"]
    path = tmp_path / "old.onnx"
    res = export(run, out=str(path))
    m = onnx.load(str(path))
    del m.metadata_props[:]
    e = m.metadata_props.add()
    e.key, e.value = "dlbox_face", json.dumps({"arch": "tinyface", "img_size": 32, "threshold": res["threshold"],
                                               "source": str(run), "input": "RGB face crops, (pixel - 127.5) / 128"})  # fmt: skip
    onnx.save(m, str(path))
    old = load_embedder(str(path))
    assert (old.arch, old.img_size, old.threshold) == ("tinyface", 32, res["threshold"])
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert np.abs(old.embed_tensor(x) - load_embedder(run).embed_tensor(x)).max() < 1e-4


def test_predictor_gives_face_detect_boxes_with_embeddings_and_verifies_a_pair(trained, strangers, astronaut, tmp_path, capsys):
    run = trained["run_dir"]
    photo = tmp_path / "astronaut.png"
    astronaut.save(photo)
    res = run_main(capsys, "face", "detect", photo, "--json")
    assert res.returncode == 0, res.stderr
    cli = json.loads(res.stdout)["images"][0]
    p = predictor(run)
    assert p.task == "face" and p.meta["task"] == "face"
    s = p.decode(photo.read_bytes())
    s.info["file"] = str(photo)
    got = p.predict([s])[0]
    assert len(got["faces"]) == len(cli["faces"]) >= 1
    for g, c in zip(got["faces"], cli["faces"], strict=True):
        assert {k: g[k] for k in ("box", "score", "landmarks")} == c
        assert len(g["embedding"]) == 64 and abs(np.linalg.norm(g["embedding"]) - 1) < 1e-4
    a, b = (strangers / "person_000" / "00.png"), (strangers / "person_001" / "00.png")
    res = run_main(capsys, "face", "compare", a, b, "--weights", run, "--aligned", "--json")
    assert res.returncode == 0, res.stderr
    want = json.loads(res.stdout)["pairs"][0]
    pair = p.predict([p.decode(a.read_bytes()), p.decode(b.read_bytes())], aligned=True, pair=True)
    assert pair[0]["pair"]["same"] == want["same"] and abs(pair[0]["pair"]["distance"] - want["distance"]) < 1e-5
    with pytest.raises(UserError, match="not an image"):
        p.decode(b"not an image")
