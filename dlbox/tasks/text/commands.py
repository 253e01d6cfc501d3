"""`dlbox text wiki2txt|convert|segment|prepare` and `dlbox text w2v train|similar|analogy|evaluate`."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_config_options, add_json, command, emit, number


def _config(cls, args: argparse.Namespace):
    from dlbox.config import resolve

    return resolve(cls, vars(args), getattr(args, "config", None))


def cmd_wiki2txt(args: argparse.Namespace) -> int:
    from dlbox.tasks.text.config import Wiki2TxtConfig
    from dlbox.tasks.text.corpus import render, wiki2txt

    emit(args, wiki2txt(args.dump, args.out, _config(Wiki2TxtConfig, args)), render)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from dlbox.tasks.text.config import ConvertConfig
    from dlbox.tasks.text.corpus import convert, render

    emit(args, convert(args.input, args.out, _config(ConvertConfig, args)), render)
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from dlbox.tasks.text.config import SegmentConfig
    from dlbox.tasks.text.corpus import render, segment

    emit(args, segment(args.input, args.out, _config(SegmentConfig, args)), render)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from dlbox.tasks.text.config import PrepareConfig
    from dlbox.tasks.text.corpus import prepare, render

    emit(args, prepare(args.dump, args.out, _config(PrepareConfig, args)), render)
    return 0


def cmd_w2v_train(args: argparse.Namespace) -> int:
    from dlbox.tasks.text import w2v

    emit(args, w2v.train(args.corpus, args.out, _config(w2v.W2VConfig, args)), w2v.render_train)
    return 0


def cmd_w2v_similar(args: argparse.Namespace) -> int:
    from dlbox.tasks.text import w2v

    emit(args, w2v.similar(args.model, args.words, topn=args.topn, negative=args.negative), w2v.render_similar)
    return 0


def cmd_w2v_analogy(args: argparse.Namespace) -> int:
    from dlbox.tasks.text import w2v

    emit(args, w2v.analogy(args.model, args.a, args.b, args.c, topn=args.topn), w2v.render_analogy)
    return 0


def cmd_w2v_evaluate(args: argparse.Namespace) -> int:
    from dlbox.tasks.text import w2v

    result = w2v.evaluate(args.model, pairs=args.pairs, analogies=args.analogies, restrict_vocab=args.restrict_vocab)
    emit(args, result, w2v.render_evaluate)
    return 0


def _io(p: argparse.ArgumentParser, what: str, help: str) -> None:
    add_json(p)
    p.add_argument(what, help=help)
    p.add_argument("--out", required=True, help="the output file (written as OUT.partial, renamed when complete)")
    p.add_argument("--config", help="a YAML file of options (typed options win)")


def register(sub) -> None:
    from dlbox.tasks.text.config import ConvertConfig, PrepareConfig, SegmentConfig, Wiki2TxtConfig
    from dlbox.tasks.text.w2v import W2VConfig

    group = command(sub, "text", "text: Wikipedia dump -> clean corpus (OpenCC, jieba) -> word2vec, queries, evaluation",
                    "dlbox text prepare zhwiki-latest-pages-articles.xml.bz2 --out corpus.txt")  # fmt: skip
    tsub = group.add_subparsers(dest="text_command", metavar="SUBCOMMAND", parser_class=type(group), required=True)

    p = command(tsub, "wiki2txt", "article text of a MediaWiki dump, markup removed, one article (or sentence) a line",
                "dlbox text wiki2txt zhwiki-latest-pages-articles.xml.bz2 --out zhwiki.txt --per-line sentence")  # fmt: skip
    _io(p, "dump", "a pages-articles dump: .xml.bz2, .xml.gz or .xml")
    add_config_options(p, Wiki2TxtConfig, title="extraction")
    p.set_defaults(func=cmd_wiki2txt)

    p = command(tsub, "convert", "OpenCC character conversion of a text file, line by line (default t2s)",
                "dlbox text convert zhwiki.txt --out zhwiki.simplified.txt --t2s")  # fmt: skip
    _io(p, "input", "a UTF-8 text file")
    p.add_argument("--t2s", dest="opencc", action="store_const", const="t2s",
                   help="traditional -> simplified Chinese (= --opencc t2s)")  # fmt: skip
    add_config_options(p, ConvertConfig, title="conversion")
    p.set_defaults(func=cmd_convert)

    p = command(tsub, "segment", "words separated by spaces: jieba for zh (CJK words only by default), letters for en",
                "dlbox text segment zhwiki.simplified.txt --out corpus.txt --lang zh --user-dict mywords.txt")  # fmt: skip
    _io(p, "input", "a UTF-8 text file, one article or sentence a line")
    add_config_options(p, SegmentConfig, title="segmentation")
    p.set_defaults(func=cmd_segment)

    p = command(tsub, "prepare", "dump -> markup removed -> OpenCC -> segmented corpus, one streaming pass",
                "dlbox text prepare zhwiki-latest-pages-articles.xml.bz2 --out corpus.txt")  # fmt: skip
    _io(p, "dump", "a pages-articles dump: .xml.bz2, .xml.gz or .xml")
    add_config_options(p, PrepareConfig, title="corpus")
    p.set_defaults(func=cmd_prepare)

    w2v = command(tsub, "w2v", "word2vec (gensim): train, nearest words, analogies, evaluation",
                  "dlbox text w2v train corpus.txt --out models/zhwiki-w2v")  # fmt: skip
    wsub = w2v.add_subparsers(dest="w2v_command", metavar="SUBCOMMAND", parser_class=type(w2v), required=True)

    p = command(wsub, "train", "train word2vec on a corpus (one sentence a line, words separated by spaces)",
                "dlbox text w2v train corpus.txt --out models/zhwiki-w2v --dim 300 --window 5 --min-count 5 --sg")  # fmt: skip
    add_json(p)
    p.add_argument("corpus", help="the corpus file (from dlbox text prepare)")
    p.add_argument("--out", required=True, help="the model directory (built beside it, renamed when complete)")
    p.add_argument("--config", help="a YAML file of options (typed options win)")
    p.add_argument("--cbow", dest="sg", action="store_const", const=False, help="CBOW (the default; = --no-sg)")
    add_config_options(p, W2VConfig, title="word2vec")
    p.set_defaults(func=cmd_w2v_train)

    p = command(wsub, "similar", "the nearest words (cosine similarity) to a word, or to several added together",
                "dlbox text w2v similar models/zhwiki-w2v 数学 --topn 10")  # fmt: skip
    add_json(p)
    p.add_argument("model", help="a model directory, or a .kv, .model, word2vec .bin or .txt file")
    p.add_argument("words", nargs="+", help="one or more words (their vectors are added)")
    p.add_argument("--negative", nargs="*", default=[], metavar="WORD", help="words whose vectors are subtracted")
    p.add_argument("--topn", type=number(int, ge=1), default=10, help="how many words (default: 10)")
    p.set_defaults(func=cmd_w2v_similar)

    p = command(wsub, "analogy", "A is to B as C is to ? (nearest to B - A + C)",
                "dlbox text w2v analogy models/enwiki-w2v man king woman")  # fmt: skip
    add_json(p)
    p.add_argument("model", help="a model directory, or a .kv, .model, word2vec .bin or .txt file")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("c")
    p.add_argument("--topn", type=number(int, ge=1), default=5, help="how many answers (default: 5)")
    p.set_defaults(func=cmd_w2v_analogy)

    p = command(wsub, "evaluate", "Spearman/Pearson on word-pair similarities, analogy accuracy, OOV ratios",
                "dlbox text w2v evaluate models/enwiki-w2v --pairs wordsim353.tsv")  # fmt: skip
    add_json(p)
    p.add_argument("model", help="a model directory, or a .kv, .model, word2vec .bin or .txt file")
    p.add_argument("--pairs", help="word pairs 'w1<TAB>w2<TAB>score' (default: gensim's wordsim353 when neither "
                                   "file is given)")  # fmt: skip
    p.add_argument("--analogies", help="analogy questions ': section' / 'a b c d' (default: gensim's "
                                       "questions-words.txt when neither file is given)")  # fmt: skip
    p.add_argument("--restrict-vocab", type=number(int, ge=1), default=300_000, metavar="N",
                   help="only the N most frequent words count as known (default: 300000)")  # fmt: skip
    p.set_defaults(func=cmd_w2v_evaluate)
