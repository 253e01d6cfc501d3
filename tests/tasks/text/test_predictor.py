"""word2vec behind the serving contract: `predictor()` answers as `text w2v similar --json` does."""

from __future__ import annotations

import numpy as np
import pytest

from dlbox.base.errors import UserError
from dlbox.runtime.predictor import Predictor
from dlbox.tasks.text.inference import predictor
from tests.tasks.text.conftest import run


def test_predictor_gives_the_nearest_words_of_w2v_similar(en_model):
    p = predictor(en_model["path"])
    assert isinstance(p, Predictor) and p.task == "text" and p.name == "w2v"
    for words in (["philosophy"], ["king", "woman"]):
        res = run("text", "w2v", "similar", en_model["path"], *words, "--topn", "4", "--json")
        assert res.returncode == 0, res.stderr
        got = p.predict([p.decode(" ".join(words).encode())], topn="4")
        assert got == [res.json()]
    r = p.predict([p.decode(b"philosophy")], topn=1, vector=True)[0]
    v = p.infer({"words": np.array([b"philosophy"], dtype=object)})["vectors"]
    assert v.shape == (1, p.outputs[0].shape[1]) and np.allclose(r["vector"], v[0], atol=1e-6)
    with pytest.raises(UserError, match="not in the vocabulary"):
        p.predict([p.decode(b"philosphy")])
    with pytest.raises(UserError, match="unknown option"):
        p.predict([p.decode(b"philosophy")], top=3)
