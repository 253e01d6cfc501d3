"""MTCNN: our cascade finds real faces with the weight files facenet-pytorch ships, exactly as facenet-pytorch does."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.conftest import assert_user_error, run_main


def test_astronaut_has_one_face_with_landmarks_in_anatomical_order(detector, astronaut):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    (face,) = faces
    x1, y1, x2, y2 = face.box
    assert face.score > 0.99
    assert 150 < x1 < x2 < 300 and 40 < y1 < y2 < 200  # her face, not the flag or the suit
    pts = face.landmarks  # (5, 2): left eye, right eye, nose, left mouth corner, right mouth corner
    assert ((pts[:, 0] > x1) & (pts[:, 0] < x2) & (pts[:, 1] > y1) & (pts[:, 1] < y2)).all()
    eyes_y, nose_y, mouth_y = pts[:2, 1].max(), pts[2, 1], pts[3:, 1].min()
    assert eyes_y < nose_y < mouth_y
    assert pts[0, 0] < pts[2, 0] < pts[1, 0] and pts[3, 0] < pts[4, 0]  # left of the nose, right of it


def test_coffee_has_no_face(detector):
    from skimage import data

    assert detector.detect(Image.fromarray(data.coffee())) == []


def test_a_minimum_face_size_above_the_face_finds_nothing(astronaut):
    from dlbox.tasks.face.mtcnn import MTCNN

    assert MTCNN(min_face_size=400).detect(astronaut) == []


def test_boxes_and_landmarks_equal_facenet_pytorch_on_the_same_photos(detector, astronaut):
    import facenet_pytorch
    from skimage import data

    ref = facenet_pytorch.MTCNN(keep_all=True, device="cpu")
    camera = Image.fromarray(np.stack([data.camera()] * 3, axis=-1))
    for img in (astronaut, camera):
        ours = detector.detect(img)
        boxes, probs, points = ref.detect(img, landmarks=True)
        assert len(ours) == len(boxes) >= 1
        order = np.argsort(-np.asarray(probs, dtype=float))
        for face, k in zip(ours, order, strict=True):
            assert np.abs(face.box - boxes[k]).max() < 1.0  # pixels
            assert np.abs(face.landmarks - points[k]).max() < 1.0
            assert abs(face.score - float(probs[k])) < 1e-4


def test_detect_command_reports_faces_a_faceless_image_and_a_corrupt_file(tmp_path, astronaut, capsys):
    from skimage import data

    astronaut.save(tmp_path / "astronaut.jpg")
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    res = run_main(capsys, "face", "detect", tmp_path, "--save-crops", tmp_path / "crops", "--json")
    assert res.returncode == 0, res.stderr
    r = res.json()
    by = {p["file"].rsplit("/", 1)[1]: p for p in r["images"]}
    assert len(by["astronaut.jpg"]["faces"]) == 1 and by["coffee.jpg"]["faces"] == []
    assert "no face found" in by["coffee.jpg"]["note"]
    assert [e["file"].rsplit("/", 1)[1] for e in r["errors"]] == ["broken.jpg"]
    assert "broken.jpg" in res.stderr
    with Image.open(by["astronaut.jpg"]["crops"][0]) as crop:
        assert crop.size == (112, 112)


def test_a_too_small_minimum_face_size_is_one_line_error(tmp_path, astronaut, capsys):
    astronaut.save(tmp_path / "a.png")
    assert_user_error(run_main(capsys, "face", "detect", tmp_path / "a.png", "--min-face-size", "5"), "12")
