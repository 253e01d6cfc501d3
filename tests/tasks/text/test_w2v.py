"""word2vec: the enwiki acceptance (positive Spearman on wordsim353), the planted Chinese pair, the model
directory, reproducibility, queries."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from gensim.models import KeyedVectors, Word2Vec

from dlbox.tasks.text import w2v
from tests.conftest import cli_env
from tests.tasks.text.conftest import run


def test_enwiki_model_correlates_positively_with_wordsim353_on_the_pairs_it_covers(en_model):
    res = run("text", "w2v", "evaluate", en_model["path"], "--json")
    assert res.returncode == 0, res.stderr
    pairs, analogies = res.json()["pairs"], res.json()["analogies"]
    assert pairs["file"].endswith("wordsim353.tsv") and pairs["pairs"] == 353
    assert pairs["used"] > 150 and 0 < pairs["oov_ratio"] < 0.6
    assert pairs["used"] == round(353 * (1 - pairs["oov_ratio"]))
    assert pairs["spearman"] > 0.15 and pairs["spearman_p"] < 0.01
    assert pairs["pearson"] > 0.1
    assert analogies["questions"] == 19544 and 0 < analogies["used"] < analogies["questions"]
    assert analogies["oov_ratio"] == round(1 - analogies["used"] / analogies["questions"], 4)
    assert 0 <= analogies["accuracy"] <= 1 and analogies["correct"] == round(analogies["accuracy"] * analogies["used"])


def test_training_reports_words_per_second_and_saves_full_model_vectors_and_word2vec_text(en_model, en_corpus):
    r, path = en_model["result"], en_model["path"]
    assert "words/s" in en_model["stderr"] and "epoch 10/10" in en_model["stderr"]
    assert r["words_per_sec"] > 0 and r["corpus_words"] == en_corpus["result"]["tokens"]
    assert sorted(r["files"]) == ["vectors.kv", "vectors.txt", "word2vec.model"]
    kv = KeyedVectors.load(str(path / "vectors.kv"))
    full = Word2Vec.load(str(path / "word2vec.model"))
    text = KeyedVectors.load_word2vec_format(str(path / "vectors.txt"))
    assert kv.vectors.shape == (r["vocab_size"], 32) and full.wv.index_to_key == kv.index_to_key
    np.testing.assert_allclose(text["war"], kv["war"], atol=1e-5)
    assert not list(path.parent.glob(".w2v.tmp-*"))  # the temporary directory was renamed into place
    # The full model continues training.
    full.train([["war", "peace", "war"]], total_examples=1, epochs=1)


def test_the_planted_chinese_pair_are_each_others_nearest_neighbours(zh_model):
    a = run("text", "w2v", "similar", zh_model, "麒麟", "--topn", "3", "--json")
    b = run("text", "w2v", "similar", zh_model, "凤凰", "--topn", "3", "--json")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert a.json()["similar"][0]["word"] == "凤凰"
    assert b.json()["similar"][0]["word"] == "麒麟"


def test_workers_1_with_a_seed_gives_identical_vectors_whatever_the_hash_seed(zh_corpus, tmp_path):
    vectors = []
    for hash_seed in ("1", "2"):  # a fresh interpreter each, with its own string-hash seed
        out = tmp_path / f"m{hash_seed}"
        code = (f"from dlbox.tasks.text.w2v import train; train({str(zh_corpus['path'])!r}, {str(out)!r}, dim=24, "
                f"window=3, min_count=2, epochs=20, workers=1, seed=1)")  # the ZH_W2V options
        proc = subprocess.run([sys.executable, "-c", code], env={**cli_env(), "PYTHONHASHSEED": hash_seed},
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        vectors.append(KeyedVectors.load(str(out / "vectors.kv")))
    assert vectors[0].index_to_key == vectors[1].index_to_key
    assert np.array_equal(vectors[0].vectors, vectors[1].vectors)


def test_analogy_answers_b_minus_a_plus_c_without_the_question_words(en_model):
    res = run("text", "w2v", "analogy", en_model["path"], "man", "king", "woman", "--topn", "5", "--json")
    assert res.returncode == 0, res.stderr
    answers = [x["word"] for x in res.json()["answers"]]
    kv = w2v.load(en_model["path"])
    expected = [w for w, _ in kv.most_similar(positive=["king", "woman"], negative=["man"], topn=5)]
    assert answers == expected and not {"man", "king", "woman"} & set(answers)


def test_similar_words_are_sorted_by_cosine_and_reload_from_the_word2vec_text_file(en_model):
    res = run("text", "w2v", "similar", en_model["path"] / "vectors.txt", "war", "--topn", "5", "--json")
    assert res.returncode == 0, res.stderr
    scores = [x["score"] for x in res.json()["similar"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    kv = w2v.load(en_model["path"])
    top = res.json()["similar"][0]
    assert abs(kv.similarity("war", top["word"]) - top["score"]) < 1e-3
