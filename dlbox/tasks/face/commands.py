"""`dlbox face detect|embed|compare|enroll|identify|train|evaluate|export`."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_config_options, add_json, command, config_from_args, emit, number

ALIGN = ("arcface112", "facenet160", "box160")


def _source(p, required: bool = True) -> None:
    help_ = "a face run directory, a checkpoint, an .onnx export, weights PATH or hub:NAME (e.g. hub:facenet-vggface2)"
    if required:
        p.add_argument("--weights", dest="source", required=True, help=help_)
    else:
        p.add_argument("--weights", dest="source", help=help_ + " (default: the one the gallery was enrolled with)")
    p.add_argument("--model", help="architecture of plain weights: inception_resnet_v1 (default), mobileface, tinyface")


def _faces(p, threshold: bool = False) -> None:
    p.add_argument("--aligned", action="store_true", help="the images are face crops already: no detection")
    p.add_argument("--align", choices=ALIGN, help="alignment (default: box160 for FaceNet weights, else arcface112)")
    p.add_argument("--flip", action="store_true", help="average each embedding with that of the mirrored face")
    if threshold:
        p.add_argument("--threshold", type=number(float, gt=0), help="distance threshold (default: the one stored with the model)")


def cmd_detect(args: argparse.Namespace) -> int:
    from dlbox.tasks.face.faces import detect, render_detect

    emit(args, detect(args.inputs, args.min_face_size, args.align or "arcface112", args.save_crops), render_detect)
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from dlbox.tasks.face.faces import embed

    r = embed(args.inputs, args.source, args.out, args.model, args.aligned, args.align, args.flip)
    emit(args, r, lambda r: f"wrote {r['out']}: {r['embedded']} embedding(s) of size {r['dim']}; {len(r['skipped'])} skipped")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from dlbox.tasks.face.identify import compare, render_compare

    r = compare(args.inputs, args.source, args.model, args.aligned, args.align, args.threshold, args.heatmap, args.flip)
    emit(args, r, render_compare)
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    from dlbox.tasks.face.identify import enroll

    r = enroll(args.gallery, args.out, args.source, args.model, args.aligned, args.align, args.flip)
    emit(args, r, lambda r: f"wrote {r['out']}: {r['people']} people from {r['photos']} photos; "
         f"{len(r['skipped'])} photo(s) skipped; not enrolled: {', '.join(r['not_enrolled']) or 'none'}")  # fmt: skip
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    from dlbox.tasks.face.identify import identify, render_identify

    aligned = True if args.aligned else None
    emit(args, identify(args.gallery, args.inputs, args.source, args.threshold, aligned), render_identify)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dlbox.tasks.face.config import FaceTrainConfig
    from dlbox.tasks.face.train import train

    cfg = config_from_args(FaceTrainConfig, args)
    cfg.validate()
    result = train(cfg)
    if result is None:
        return 0

    def render(r) -> str:
        acc = f"{100 * r['verify_acc']:.2f}%" if r["verify_acc"] is not None else "-"
        return (f"{'run':<22} {r['run_dir']}\n{'verification (held out)':<22} {acc} on {r['val_pairs']} pairs of "
                f"{r['val_identities']} unseen identities\n{'threshold':<22} {r['threshold']:.4f}\n"
                f"{'best epoch':<22} {r['best_epoch']} of {r['epochs']}\n{'time':<22} {r['seconds']:.1f} s "
                f"({r['images_per_sec']:.0f} images/s, {r['processes']} process(es))")  # fmt: skip

    emit(args, result, render)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dlbox.tasks.face.evaluate import evaluate, render

    r = evaluate(args.source, args.pairs, args.data, args.images, args.model, args.aligned, args.align, args.flip,
                 args.num_pairs, args.seed, args.out)  # fmt: skip
    emit(args, r, render)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dlbox.tasks.face.export import export

    r = export(args.source, args.out, args.model, dynamic_batch=not args.static_batch)
    emit(args, r, lambda r: f"wrote {r['file']} (embeddings of size {r['dim']}); parity with PyTorch: "
         f"max |diff| = {r['max_abs_diff']:.2e}")  # fmt: skip
    return 0


def register(sub) -> None:
    from dlbox.tasks.face.config import FaceTrainConfig

    group = command(sub, "face", "face verification: detect and align, embed, compare, identify, train, evaluate, export",
                    "dlbox face compare a1.jpg a2.jpg b1.jpg --weights hub:facenet-vggface2")  # fmt: skip
    fsub = group.add_subparsers(dest="face_command", metavar="SUBCOMMAND", parser_class=type(group), required=True)

    p = command(fsub, "detect", "MTCNN: boxes, scores and 5 landmarks of every face; aligned crops on request",
                "dlbox face detect photos/ --save-crops crops/ --json")  # fmt: skip
    add_json(p)
    p.add_argument("inputs", nargs="+", help="image files, folders or quoted globs")
    p.add_argument("--save-crops", metavar="DIR", help="write an aligned crop of every face here")
    p.add_argument("--align", choices=ALIGN, help="crop template (default: arcface112)")
    p.add_argument("--min-face-size", type=number(int, ge=12), default=20, help="smallest face searched, in pixels (default: 20)")
    p.set_defaults(func=cmd_detect)

    p = command(fsub, "embed", "L2-normalised embeddings of the largest face of each image, into an .npz",
                "dlbox face embed photos/ --weights hub:facenet-vggface2 --out embeddings.npz")  # fmt: skip
    add_json(p)
    p.add_argument("inputs", nargs="+", help="image files, folders or quoted globs")
    p.add_argument("--out", required=True, help="the .npz file (files, embeddings, source)")
    _source(p)
    _faces(p)
    p.set_defaults(func=cmd_embed)

    p = command(fsub, "compare", "distance matrix of the faces in a few photos, heatmap, same/different per pair",
                "dlbox face compare a1.jpg a2.jpg b1.jpg b2.jpg --weights runs/face/NAME --heatmap dist.png")  # fmt: skip
    add_json(p)
    p.add_argument("inputs", nargs="+", help="two or more images")
    p.add_argument("--heatmap", metavar="PNG", help="write the distance matrix as a heat map with the face crops")
    _source(p)
    _faces(p, threshold=True)
    p.set_defaults(func=cmd_compare)

    p = command(fsub, "enroll", "a gallery: one folder per person -> one embedding per person (.npz)",
                "dlbox face enroll gallery/ --weights runs/face/NAME --out gallery.npz")  # fmt: skip
    add_json(p)
    p.add_argument("gallery", help="GALLERY_DIR/<person>/<photo>")
    p.add_argument("--out", required=True, help="the gallery file (.npz)")
    _source(p)
    _faces(p)
    p.set_defaults(func=cmd_enroll)

    p = command(fsub, "identify", "one to many: the nearest enrolled person, or unknown beyond the threshold",
                "dlbox face identify gallery.npz visitor.jpg")  # fmt: skip
    add_json(p)
    p.add_argument("gallery", help="a gallery from `dlbox face enroll`")
    p.add_argument("inputs", nargs="+", help="image files, folders or quoted globs")
    _source(p, required=False)
    p.add_argument("--aligned", action="store_true", help="the images are face crops already: no detection")
    p.add_argument("--threshold", type=number(float, gt=0), help="distance threshold (default: the one stored with the model)")
    p.set_defaults(func=cmd_identify)

    p = command(fsub, "train", "train an embedder on identity folders (ArcFace or triplet), held-out identities",
                "dlbox face train --data data/faces --model mobileface --epochs 20")  # fmt: skip
    add_json(p)
    p.add_argument("--config", help="a YAML file of options (typed options win)")
    add_config_options(p, FaceTrainConfig, title="face training")
    p.set_defaults(func=cmd_train, command_path="dlbox face train")

    p = command(fsub, "evaluate", "LFW 10-fold accuracy, TAR at FAR 1e-3/1e-4, ROC; stores the threshold",
                "dlbox face evaluate --weights hub:facenet-vggface2 --pairs lfw/pairs.txt --images lfw/lfw")  # fmt: skip
    add_json(p)
    _source(p)
    p.add_argument("--pairs", help="LFW-style pairs.txt")
    p.add_argument("--images", help="folder of the pairs' images, ROOT/name/name_NNNN.jpg (default: PAIRS_DIR/lfw)")
    p.add_argument("--data", help="identity folders to draw balanced, seeded pairs from (instead of --pairs)")
    p.add_argument("--num-pairs", type=number(int, ge=2), default=6000, help="pairs to draw with --data (default: 6000, as LFW)")
    p.add_argument("--seed", type=number(int, ge=0), default=0, help="seed of the pairs drawn with --data (default: 0)")
    p.add_argument("--out", help="where metrics.json and roc.png go (default: RUN/eval)")
    _faces(p)
    p.set_defaults(func=cmd_evaluate)

    p = command(fsub, "export", "the embedder to ONNX, with a parity check against PyTorch",
                "dlbox face export runs/face/NAME --out face.onnx")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="a face run directory, a checkpoint, weights PATH or hub:NAME")
    p.add_argument("--model", help="architecture of plain weights (default: inception_resnet_v1)")
    p.add_argument("--out", help="output file (default: RUN/model.onnx)")
    p.add_argument("--static-batch", action="store_true", help="batch 1 only (default: any batch size)")
    p.set_defaults(func=cmd_export)
