"""From image files to face crops and embeddings: `dlbox face detect` and `dlbox face embed`.

Every unreadable image or image without a face is reported (file and reason) and counted, never dropped in
silence; the commands that need every image (compare) make it an error instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.base.progress import bar, log
from dlbox.data.inputs import expand_inputs
from dlbox.tasks.face.data import largest, read_image
from dlbox.tasks.face.inference import default_align


def detect(inputs: list[str], min_face_size: int = 20, align: str = "arcface112", save_crops: str | None = None,
           detector=None) -> dict[str, Any]:  # fmt: skip
    """Boxes, scores and landmarks of every face in every image; ``save_crops``: aligned crops as PNG files."""
    from dlbox.base.fileio import atomic_write
    from dlbox.tasks.face.align import align as align_face
    from dlbox.tasks.face.mtcnn import MTCNN

    files = expand_inputs(inputs)
    detector = detector or MTCNN(min_face_size=min_face_size)
    images, errors = [], []
    with bar(len(files), "detect", unit="image") as pbar:
        for f in files:
            pbar.update(1)
            try:
                img = read_image(f)
            except UserError as e:
                errors.append({"file": str(f), "error": e.message})
                continue
            faces = detector.detect(img)
            entry: dict[str, Any] = {"file": str(f), "faces": [x.as_dict() for x in faces]}
            if not faces:
                entry["note"] = f"no face found (smallest face searched: {detector.min_face_size} px)"
            if save_crops and faces:
                entry["crops"] = []
                for k, face in enumerate(faces):
                    out = Path(save_crops) / f"{f.stem}_{k}.png"
                    crop = align_face(img, face, align)
                    atomic_write(out, lambda tmp, c=crop: c.save(tmp, format="PNG"))
                    entry["crops"].append(str(out))
            images.append(entry)
    for e in errors:
        log(f"skipped {e['file']}: {e['error']}")
    return {"images": images, "errors": errors, "faces": sum(len(i["faces"]) for i in images),
            "without_face": sum(1 for i in images if not i["faces"])}  # fmt: skip


def render_detect(r: dict[str, Any]) -> str:
    lines = []
    for im in r["images"]:
        if not im["faces"]:
            lines.append(f"{im['file']}: {im['note']}")
        for k, f in enumerate(im["faces"]):
            x1, y1, x2, y2 = f["box"]
            lines.append(f"{im['file']} face {k}: box ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}) score {f['score']:.3f}")
    lines.append(f"{r['faces']} face(s) in {len(r['images'])} image(s); {r['without_face']} without a face; "
                 f"{len(r['errors'])} unreadable")  # fmt: skip
    return "\n".join(lines)


def face_crops(files: list[Path], align: str, aligned: bool, detector=None, strict: bool = False,
               min_face_size: int = 20) -> tuple[list[Image.Image], list[Path], list[dict[str, str]]]:  # fmt: skip
    """The largest face of each image as an aligned crop (``aligned``: the images are crops already).

    Returns crops, the files they came from, and the skipped files with reasons; ``strict`` raises instead."""
    from dlbox.tasks.face.align import align as align_face

    if not aligned and detector is None:
        from dlbox.tasks.face.mtcnn import MTCNN

        detector = MTCNN(min_face_size=min_face_size)
    crops, ok, skipped = [], [], []
    with bar(len(files), "faces", unit="image") as pbar:
        for f in files:
            pbar.update(1)
            try:
                img = read_image(f)
            except UserError as e:
                if strict:
                    raise
                skipped.append({"file": str(f), "error": e.message})
                continue
            if aligned:
                crops.append(img)
                ok.append(f)
                continue
            face = largest(detector.detect(img))
            if face is None:
                if strict:
                    raise UserError(f"no face found in {f}", "use a photo with a face of at least "
                                    f"{detector.min_face_size} px, or pass face crops with --aligned")  # fmt: skip
                skipped.append({"file": str(f), "error": "no face found"})
                continue
            crops.append(align_face(img, face, align))
            ok.append(f)
    for s in skipped:
        log(f"skipped {s['file']}: {s['error']}")
    return crops, ok, skipped




def embed(inputs: list[str], source: str, out: str, model: str | None = None, aligned: bool = False,
          align: str | None = None, flip: bool = False, min_face_size: int = 20) -> dict[str, Any]:  # fmt: skip
    """One embedding per image (its largest face) into ``out`` (.npz: files, embeddings, model source)."""
    from dlbox.tasks.face.inference import load_embedder

    emb = load_embedder(source, model)
    files = expand_inputs(inputs)
    crops, ok, skipped = face_crops(files, align or default_align(emb), aligned, min_face_size=min_face_size)
    if not crops:
        raise UserError(f"no face in any of the {len(files)} image(s)", "check the images, or pass crops with --aligned")
    vecs = emb.embed_images(crops, flip=flip)
    save_npz(out, files=np.array([str(f) for f in ok]), embeddings=vecs, source=np.array(str(source)))
    return {"out": str(out), "embedded": len(ok), "dim": int(vecs.shape[1]), "skipped": skipped}


def save_npz(path: str | Path, **arrays) -> None:
    """Atomic .npz (np.savez on a path would add a second .npz suffix to the temporary name)."""
    from dlbox.base.fileio import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)
