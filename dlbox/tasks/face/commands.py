"""`dlbox face detect|embed|compare|enroll|identify|train|evaluate|export`."""

from __future__ import annotations

from dlbox.cliutil import Command, call, group, lazy
from dlbox.tasks.face import config


def detect(c: config.DetectArgs) -> dict:
    return lazy("dlbox.tasks.face.faces:detect")(c.inputs, c.min_face_size, c.align or "arcface112", c.save_crops)


def identify(c: config.IdentifyArgs) -> dict:
    return lazy("dlbox.tasks.face.identify:identify")(c.gallery, c.inputs, c.source, c.threshold, True if c.aligned else None)


def render_train(r) -> str:
    acc = f"{100 * r['verify_acc']:.2f}%" if r["verify_acc"] is not None else "-"
    return (f"{'run':<22} {r['run_dir']}\n{'verification (held out)':<22} {acc} on {r['val_pairs']} pairs of "
            f"{r['val_identities']} unseen identities\n{'threshold':<22} {r['threshold']:.4f}\n"
            f"{'best epoch':<22} {r['best_epoch']} of {r['epochs']}\n{'time':<22} {r['seconds']:.1f} s "
            f"({r['images_per_sec']:.0f} images/s, {r['processes']} process(es))")  # fmt: skip


COMMANDS = [
    Command("detect", "MTCNN: boxes, scores and 5 landmarks of every face; aligned crops on request",
            "dlbox face detect photos/ --save-crops crops/ --json",
            config.DetectArgs, detect, lazy("dlbox.tasks.face.faces:render_detect")),
    Command("embed", "L2-normalised embeddings of the largest face of each image, into an .npz",
            "dlbox face embed photos/ --weights hub:facenet-vggface2 --out embeddings.npz",
            config.EmbedArgs, call("dlbox.tasks.face.faces:embed"),
            lambda r: f"wrote {r['out']}: {r['embedded']} embedding(s) of size {r['dim']}; {len(r['skipped'])} skipped"),
    Command("compare", "distance matrix of the faces in a few photos, heatmap, same/different per pair",
            "dlbox face compare a1.jpg a2.jpg b1.jpg b2.jpg --weights runs/face/NAME --heatmap dist.png",
            config.CompareArgs, call("dlbox.tasks.face.identify:compare"), lazy("dlbox.tasks.face.identify:render_compare")),
    Command("enroll", "a gallery: one folder per person -> one embedding per person (.npz)",
            "dlbox face enroll gallery/ --weights runs/face/NAME --out gallery.npz",
            config.EnrollArgs, call("dlbox.tasks.face.identify:enroll", gallery_dir="gallery"),
            lambda r: f"wrote {r['out']}: {r['people']} people from {r['photos']} photos; "
                      f"{len(r['skipped'])} photo(s) skipped; not enrolled: {', '.join(r['not_enrolled']) or 'none'}"),
    Command("identify", "one to many: the nearest enrolled person, or unknown beyond the threshold",
            "dlbox face identify gallery.npz visitor.jpg",
            config.IdentifyArgs, identify, lazy("dlbox.tasks.face.identify:render_identify")),
    Command("train", "train an embedder on identity folders (ArcFace or triplet), held-out identities",
            "dlbox face train --data data/faces --model mobileface --epochs 20",
            config.FaceTrainConfig, lazy("dlbox.tasks.face.train:train"), render_train, train="face training"),
    Command("evaluate", "LFW 10-fold accuracy, TAR at FAR 1e-3/1e-4, ROC; stores the threshold",
            "dlbox face evaluate --weights hub:facenet-vggface2 --pairs lfw/pairs.txt --images lfw/lfw",
            config.EvaluateArgs, call("dlbox.tasks.face.evaluate:evaluate", pairs_file="pairs", n_pairs="num_pairs"),
            lazy("dlbox.tasks.face.evaluate:render")),
    Command("export", "the embedder to ONNX, TorchScript or OpenVINO IR, with a parity check against PyTorch",
            "dlbox face export runs/face/NAME --out face.onnx",
            config.ExportArgs,
            lambda c: lazy("dlbox.tasks.face.export:export")(c.source, c.out, c.model, not c.static_batch, c.format,
                                                             register=c.register),
            lambda r: f"wrote {r['file']} (embeddings of size {r['dim']}); parity with PyTorch: "
                      f"max |diff| = {r['max_abs_diff']:.2e}"
                      + (f"\nregistered {r['registered']['uri']}" if r.get("registered") else "")),
]  # fmt: skip


register = group("face", "face verification: detect and align, embed, compare, identify, train, evaluate, export",
                 "dlbox face compare a1.jpg a2.jpg b1.jpg --weights hub:facenet-vggface2", COMMANDS)  # fmt: skip
