"""Session fixtures of the serve tests: a digits classifier and a tinydet trained small, an ONNX export laid out
as a model repository, and one server with all of them on a free loopback port (stopped at the end)."""

from __future__ import annotations

import logging
import shutil

import pytest

from tests.conftest import dlbox_home, write_tiny_asr_run


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict:
    """Digits: timm's test_efficientnet, 3 epochs at 32 px (about 97% on validation). Shapes: tinydet, 12 epochs
    at 96 px on 160 training images (boxes scored 0.3-0.7 on its images: enough to draw). Words: word2vec on a
    generated corpus of two topics."""
    from dlbox.data.samples import write_sample
    from dlbox.data.shapes_det import write_shapes_det
    from dlbox.tasks.classify.config import ClassifyConfig
    from dlbox.tasks.classify.train import train as train_classifier
    from dlbox.tasks.detect.config import DetectConfig
    from dlbox.tasks.detect.train import train as train_detector

    root = tmp_path_factory.mktemp("serve")
    write_sample("digits", root / "digits")
    clf = train_classifier(ClassifyConfig(data=str(root / "digits"), model="timm:test_efficientnet", img_size=32,
                                          epochs=3, lr=3e-3, augment="none", runs_dir=str(root / "runs"),
                                          name="digits", monitor_interval=0, threads=1))  # fmt: skip
    write_shapes_det(root / "shapes", seed=0, n_images=200)
    det = train_detector(DetectConfig(data=str(root / "shapes"), epochs=12, img_size=96, batch_size=16, threads=1,
                                      device="cpu", runs_dir=str(root / "runs"), name="shapes", monitor_interval=0))  # fmt: skip
    from dlbox.tasks.classify.export import export

    onnx = export(clf["run_dir"], "onnx", out=str(root / "digits.onnx"))
    repo = root / "repo"
    for v in ("1", "2"):
        (repo / "digitsx" / v).mkdir(parents=True)
        shutil.copy(onnx["file"] if "file" in onnx else root / "digits.onnx", repo / "digitsx" / v / "model.onnx")
    import random

    from dlbox.tasks.text import w2v

    rng = random.Random(0)  # a corpus of two topics: words of one topic keep company
    topics = [["cat", "dog", "mouse", "horse", "cow", "sheep"], ["red", "green", "blue", "yellow", "black", "white"]]
    lines = [" ".join(rng.choice(topics[i % 2]) for _ in range(12)) for i in range(400)]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n")
    w2v.train(root / "corpus.txt", root / "w2v", dim=16, epochs=3, min_count=1, workers=1)
    digit_files = {c: sorted((root / "digits" / c).iterdir())[:2] for c in "0123456789"}
    shape_files = sorted((root / "shapes" / "images").iterdir())[:4]
    return {"digits_run": clf["run_dir"], "det_run": det["run_dir"], "repo": str(repo), "root": root, "w2v": str(root / "w2v"),
            "digit_files": digit_files, "shape_files": shape_files}  # fmt: skip


@pytest.fixture(scope="session")
def speech_faces(tmp_path_factory) -> dict:
    """Untrained but fixed-seed models (equality with the CLI needs no learning): a tiny CTC recogniser as a run
    directory and a 1 s WAV of two tones; a tinyface embedder exported to ONNX, the astronaut's face (the photo
    ships in scikit-image) and its mirror image, smaller (MTCNN finds the face in both)."""
    import torch
    from PIL import Image, ImageOps
    from skimage import data

    from dlbox.tasks.face import models as face_models
    from dlbox.tasks.face.export import export as face_export

    root = tmp_path_factory.mktemp("speech-faces")
    run = root / "asr-run"
    write_tiny_asr_run(run, root / "tones.wav")

    torch.manual_seed(0)
    torch.save(face_models.build("tinyface", 64, 0.5).state_dict(), root / "tinyface.pt")
    face = face_export(str(root / "tinyface.pt"), out=str(root / "face.onnx"), model="tinyface")["file"]
    photo = Image.fromarray(data.astronaut()).crop((130, 20, 322, 212))  # her face, small: MTCNN's time goes with pixels
    photo.save(root / "astronaut.png")
    ImageOps.mirror(photo).resize((160, 160)).save(root / "mirror.png")
    return {"asr_run": str(run), "wav": root / "tones.wav", "face": face, "photos": [root / "astronaut.png", root / "mirror.png"]}


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(r.getMessage() + (" TRACEBACK" if r.exc_info else "") for r in self.records)


@pytest.fixture(scope="session")
def server_log():
    """Every line the servers log (dlbox.serve and uvicorn's), to check: no traceback, no key."""
    handler = Records()
    loggers = [logging.getLogger(n) for n in ("dlbox.serve", "uvicorn", "uvicorn.error")]
    for lg in loggers:
        lg.addHandler(handler)
    yield handler
    for lg in loggers:
        lg.removeHandler(handler)


@pytest.fixture(scope="session")
def server(trained, speech_faces, server_log, tmp_path_factory):
    """digits (a run), det (a run), digitsx (an ONNX model repository, versions 1 and 2), words (word2vec),
    speech (an ASR run), faces (a face ONNX export); --backend auto with no saved fast path (an empty
    $DLBOX_HOME while the backends are chosen): PyTorch for the runs, onnxruntime for the exports."""
    from dlbox.serve.server import start

    models = [f"digits={trained['digits_run']}", f"det={trained['det_run']}", trained["repo"], f"words={trained['w2v']}",
              f"speech={speech_faces['asr_run']}", f"faces={speech_faces['face']}"]  # fmt: skip
    with dlbox_home(tmp_path_factory.mktemp("no-fast-path")):
        s = start(models, port=0, max_batch=16, max_delay_ms=5, max_body_mb=1, threads=2)
    yield s
    s.stop()
