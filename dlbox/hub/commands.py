"""`dlbox hub`: list, info, download, add, mirror, sync. Parsing only; the work is in dlbox.hub modules."""

from __future__ import annotations

from dlbox.cliutil import Command, call, group, lazy
from dlbox.hub import config

COMMANDS = [
    Command("list", "the catalog: name, kind, task, size, whether cached", "dlbox hub list --task detect --json",
            config.ListArgs, call("dlbox.hub.listing:rows"), lazy("dlbox.hub.listing:render_rows")),
    Command("info", "one entry: files, sizes, hashes, whether cached and where, metrics, licence",
            "dlbox hub info resnet50 --json",
            config.InfoArgs, call("dlbox.hub.listing:info"), lazy("dlbox.hub.listing:render_info")),
    Command("download", "fetch an entry's files into the cache (mirrors, resume, hash check), optionally "
            "place or extract them", "dlbox hub download coco2017 --only val2017.zip --to data/coco --extract",
            config.DownloadArgs, call("dlbox.hub.download:download", extract_archives="extract"),
            lazy("dlbox.hub.download:render_download"),
            description="Fetch every file of NAME (or those named with --only) into $DLBOX_HOME/hub: mirrors in\n"
            "order, then upstream; several files in parallel, resumed after an interruption, retried\n"
            "with backoff, verified (sha256 or md5) before it is moved into place. --to DIR also puts\n"
            "them there (hard link or copy); --extract unpacks .tar/.tar.gz/.tgz/.zip into --to DIR\n"
            "(default $DLBOX_HOME/extracted/NAME), refusing members that would land outside it."),
    Command("add", "register a file you already have (checked against the catalog hash) for offline use",
            "dlbox hub add imagenet2012 --file ~/Downloads/ILSVRC2012_img_val.tar",
            config.AddArgs, call("dlbox.hub.download:add"), lazy("dlbox.hub.download:render_add")),
    Command("mirror", "fill a mirror (s3://bucket/prefix or a directory) with entries' files",
            "dlbox hub mirror resnet18 mnist --to s3://models-mirror/dlbox",
            config.MirrorArgs, call("dlbox.hub.sync:mirror"), lazy("dlbox.hub.sync:render_mirror")),
    Command("sync", "copy a tree between a local directory and object storage, either way, incrementally",
            "dlbox hub sync s3://mydata/ data/ --json",
            config.SyncArgs, call("dlbox.hub.sync:sync"), lazy("dlbox.hub.sync:render_sync")),
    Command("convert", "a TF-Slim checkpoint (hub entry or path) -> PyTorch weights in safetensors",
            "dlbox hub convert slim-inception_v1 --out googlenet-slim.safetensors",
            config.ConvertArgs, call("dlbox.convert.slim:convert_to_file"),
            lambda r: f"wrote {r['file']}: {r['model_name']} ({r['family']}), {r['num_classes']} classes"
                      f"{' (background class dropped)' if r['background_dropped'] else ''}, "
                      f"{r['params'] / 1e6:.2f} M parameters",
            description="Convert a TF-Slim checkpoint once: a catalog entry (downloaded and extracted when\n"
            "needed) or a checkpoint path (V2 prefix/.index, or a V1 .ckpt), read without TensorFlow.\n"
            "The file has torchvision's keys (googlenet, resnet50/101/152) or dlbox's MobileNetV1's,\n"
            "ImageNet's 1000 classes (a 1001st background output is dropped), and the facts dlbox\n"
            "needs to rebuild TF's padding and strides: `--weights FILE` uses them."),
]  # fmt: skip


register = group("hub", "datasets and pretrained models: catalog, mirrored checksummed downloads, S3 sync",
                 "dlbox hub list --task classify", COMMANDS,
                 description="The hub: a catalog of datasets and pretrained models (torchvision's weights, TF-Slim\n"
                 "checkpoints), downloaded into $DLBOX_HOME (default ~/.cache/dlbox) through mirrors\n"
                 "(DLBOX_MIRROR: http(s), s3://, or a directory) with hash checks, usable offline\n"
                 "(DLBOX_OFFLINE=1), plus copying trees to and from object storage.")  # fmt: skip
