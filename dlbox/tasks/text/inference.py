"""word2vec behind ``dlbox.runtime.predictor.Predictor`` (what ``dlbox serve`` runs): a word (UTF-8 body) ->
its nearest words, as `text w2v similar --json` prints them, and optionally its vector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlbox.base.errors import UserError
from dlbox.runtime.inputs import decode_text, default_name, int_option, no_more_options
from dlbox.runtime.predictor import Sample, TensorSpec
from dlbox.tasks.text import w2v


class W2VPredictor:
    """Per word the dict of `text w2v similar MODEL WORD --topn N --json` (``query``, ``negative``, ``similar``);
    with ``vector=true`` also ``vector`` (the word's embedding, 6 decimals). A body of several words separated
    by spaces adds their vectors, as the CLI does with several words. Options: ``topn`` (default 10),
    ``vector``. Tensor level: ``words`` (N,) BYTES -> ``vectors`` (N, D) (a word out of the vocabulary is an error)."""

    task = "text"

    def __init__(self, wv, name: str, source: str):
        self.wv, self.name = wv, name
        self.meta = {"task": "text", "model_name": "word2vec", "classes": [], "vocabulary": len(wv),
                     "dim": int(wv.vector_size), "source": source, "backend": "gensim"}  # fmt: skip
        self.inputs = [TensorSpec("words", "BYTES", (-1,))]
        self.outputs = [TensorSpec("vectors", "FP32", (-1, int(wv.vector_size)))]

    def decode(self, payload: bytes, content_type: str | None = None, **options: Any) -> Sample:
        no_more_options(dict(options), "no decode options")
        return Sample(decode_text(payload).split(), {})

    def predict(self, samples: list[Sample], **options: Any) -> list[dict[str, Any]]:
        topn = int_option(options, "topn", 10, 1, 100_000)
        vector = str(options.pop("vector", False)).lower() in ("true", "1", "yes")
        no_more_options(options, "topn, vector")
        out = []
        for s in samples:
            words = [s.data] if isinstance(s.data, str) else list(s.data)
            r = w2v.similar(self.wv, words, topn=topn)
            if vector:
                r["vector"] = [round(float(x), 6) for x in self.wv.get_mean_vector(words, pre_normalize=False)]
            out.append(r)
        return out

    def infer(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        no_more_options({k: 0 for k in tensors if k != "words"}, "the tensor words (N,) BYTES")
        if "words" not in tensors:
            raise UserError("missing input tensor words", "send words: (N,) BYTES")
        words = [w.decode("utf-8") if isinstance(w, bytes) else str(w) for w in np.asarray(tensors["words"]).reshape(-1)]
        w2v._require(self.wv, words)
        return {"vectors": np.stack([self.wv[w] for w in words]).astype(np.float32)}


def predictor(source: str | Path, name: str | None = None) -> W2VPredictor:
    """A ``Predictor`` for a word2vec model directory or file (anything `text w2v similar` takes)."""
    return W2VPredictor(w2v.load(source), name or default_name(source), str(source))
