"""Shared, session-scoped: the MTCNN detector, drawn identity folders and one small embedder trained on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# The acceptance configuration (measured on 3 seeds, see test_train.py): tinyface at 32 px on 60 drawn
# identities (45 trained, 15 held out), 6 photos each, ArcFace with a small margin for the few steps. One
# thread: on a shared 2-core machine, two OpenMP threads spin-wait and cost 10x the CPU time.
TRAIN = dict(model="tinyface", img_size=32, width=0.5, embedding_dim=64, epochs=10, batch_size=16, lr=3e-3,
             margin=0.2, scale=16.0, val_identities=0.25, val_pairs=400, device="cpu", threads=1)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread for the face tests (see TRAIN), restored afterwards for the rest of the suite."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def detector():
    from dlbox.tasks.face.mtcnn import MTCNN

    return MTCNN()


@pytest.fixture(scope="session")
def astronaut():
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="session")
def identities(tmp_path_factory) -> Path:
    from dlbox.tasks.face.synthetic import make_identities

    return make_identities(tmp_path_factory.mktemp("faces") / "ids", identities=60, photos=6, size=32, seed=0)


@pytest.fixture(scope="session")
def strangers(tmp_path_factory) -> Path:
    """People the model never saw (another seed): 8 identities, 4 photos each."""
    from dlbox.tasks.face.synthetic import make_identities

    return make_identities(tmp_path_factory.mktemp("faces") / "new", identities=8, photos=4, size=32, seed=1234)


@pytest.fixture(scope="session")
def trained(identities, tmp_path_factory) -> dict:
    from dlbox.tasks.face.config import FaceTrainConfig
    from dlbox.tasks.face.train import train

    runs = tmp_path_factory.mktemp("runs")
    cfg = FaceTrainConfig(data=str(identities), runs_dir=str(runs), name="tiny", seed=0, **TRAIN)
    cfg.validate()
    return train(cfg)


def saved_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
