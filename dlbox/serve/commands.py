"""`dlbox serve MODEL...`: parsing only; the work is in dlbox.serve.server."""

from __future__ import annotations

from dlbox.cliutil import Command, fields_from_args, lazy, register_commands
from dlbox.serve import config

COMMANDS = [
    Command("serve", "models as a web service: KServe v2 protocol, task routes, dynamic batching, metrics, a page",
            "dlbox serve runs/classify/digits det=runs/detect/shapes --port 8000",
            config.ServeArgs, lazy("dlbox.serve.server:serve"),
            description="Serve run directories, .onnx/.pt exports, hub:NAME models or a model repository folder\n"
            "(NAME/VERSION/model.onnx, as Triton's) over HTTP: /v2 (KServe Open Inference Protocol, JSON\n"
            "and binary tensors), /v1/models/NAME/predict (an image, a WAV file or a word; the CLI's --json\n"
            "answer), /v1/audio/transcriptions, /v1/embeddings, /metrics (Prometheus), /openapi.json, and a\n"
            "page at / to try the models. Requests of a model are batched (--max-batch, --max-delay-ms).\n"
            "It listens on 127.0.0.1; another --host needs an API key (--api-key auto prints a generated one\n"
            "once). Ctrl-C finishes the requests in flight and stops. --json: one line {url, models, ...}."),
]  # fmt: skip


def _run(args) -> int:
    from dlbox.serve.server import serve

    serve(fields_from_args(config.ServeArgs, args), as_json=args.json)
    return 0


def register(sub) -> None:
    """The spec's parser, run by ``_run``: the server prints its own startup line (JSON with --json) and runs
    until stopped, so there is no result to print afterwards."""
    parser = register_commands(sub, COMMANDS)["serve"]
    parser.set_defaults(func=_run)
