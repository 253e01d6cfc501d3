"""`dlbox text wiki2txt|convert|segment|prepare` and `dlbox text w2v train|similar|analogy|evaluate`."""

from __future__ import annotations

from dlbox.cliutil import Command, call, group, lazy
from dlbox.tasks.text import config

RENDER = lazy("dlbox.tasks.text.corpus:render")

COMMANDS = [
    Command("wiki2txt", "article text of a MediaWiki dump, markup removed, one article (or sentence) a line",
            "dlbox text wiki2txt zhwiki-latest-pages-articles.xml.bz2 --out zhwiki.txt --per-line sentence",
            config.Wiki2TxtArgs, lambda c: lazy("dlbox.tasks.text.corpus:wiki2txt")(c.dump, c.out, c.options), RENDER),
    Command("convert", "OpenCC character conversion of a text file, line by line (default t2s)",
            "dlbox text convert zhwiki.txt --out zhwiki.simplified.txt --t2s",
            config.ConvertArgs, lambda c: lazy("dlbox.tasks.text.corpus:convert")(c.input, c.out, c.options), RENDER),
    Command("segment", "words separated by spaces: jieba for zh (CJK words only by default), letters for en",
            "dlbox text segment zhwiki.simplified.txt --out corpus.txt --lang zh --user-dict mywords.txt",
            config.SegmentArgs, lambda c: lazy("dlbox.tasks.text.corpus:segment")(c.input, c.out, c.options), RENDER),
    Command("prepare", "dump -> markup removed -> OpenCC -> segmented corpus, one streaming pass",
            "dlbox text prepare zhwiki-latest-pages-articles.xml.bz2 --out corpus.txt",
            config.PrepareArgs, lambda c: lazy("dlbox.tasks.text.corpus:prepare")(c.dump, c.out, c.options), RENDER),
]  # fmt: skip

W2V_COMMANDS = [
    Command("train", "train word2vec on a corpus (one sentence a line, words separated by spaces)",
            "dlbox text w2v train corpus.txt --out models/zhwiki-w2v --dim 300 --window 5 --min-count 5 --sg",
            config.W2VTrainArgs, lambda c: lazy("dlbox.tasks.text.w2v:train")(c.corpus, c.out, c.options),
            lazy("dlbox.tasks.text.w2v:render_train")),
    Command("similar", "the nearest words (cosine similarity) to a word, or to several added together",
            "dlbox text w2v similar models/zhwiki-w2v 数学 --topn 10",
            config.W2VSimilarArgs, call("dlbox.tasks.text.w2v:similar"), lazy("dlbox.tasks.text.w2v:render_similar")),
    Command("analogy", "A is to B as C is to ? (nearest to B - A + C)",
            "dlbox text w2v analogy models/enwiki-w2v man king woman",
            config.W2VAnalogyArgs, call("dlbox.tasks.text.w2v:analogy"), lazy("dlbox.tasks.text.w2v:render_analogy")),
    Command("evaluate", "Spearman/Pearson on word-pair similarities, analogy accuracy, OOV ratios",
            "dlbox text w2v evaluate models/enwiki-w2v --pairs wordsim353.tsv",
            config.W2VEvaluateArgs, call("dlbox.tasks.text.w2v:evaluate"), lazy("dlbox.tasks.text.w2v:render_evaluate")),
]  # fmt: skip


register = group("text", "text: Wikipedia dump -> clean corpus (OpenCC, jieba) -> word2vec, queries, evaluation",
                 "dlbox text prepare zhwiki-latest-pages-articles.xml.bz2 --out corpus.txt", [
                     *COMMANDS,
                     group("w2v", "word2vec (gensim): train, nearest words, analogies, evaluation",
                           "dlbox text w2v train corpus.txt --out models/zhwiki-w2v", W2V_COMMANDS),
                 ])  # fmt: skip
