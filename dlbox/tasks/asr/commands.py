"""`dlbox asr prepare|synth|fix|train|transcribe|evaluate|export`."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_config_options, add_json, command, config_from_args, emit, number


def cmd_prepare(args: argparse.Namespace) -> int:
    from dlbox.tasks.asr.prepare import prepare, render

    emit(args, prepare(args.corpus, args.corpus_dir, args.out, transcripts=args.transcripts), render)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from dlbox.tasks.asr.synth import make_corpus

    r = make_corpus(args.out, n_train=args.train, n_test=args.test, seed=args.seed)
    emit(args, r, lambda r: f"wrote {r['out']}/train ({r['train']} utterances) and {r['out']}/test ({r['test']}), "
                            f"{r['hours'] * 60:.1f} min of audio over {len(r['characters'])} characters")  # fmt: skip
    return 0


def cmd_fix(args: argparse.Namespace) -> int:
    from dlbox.tasks.asr.data import fix_data_dir

    r = fix_data_dir(args.data)
    emit(args, r, lambda r: f"kept {r['kept']} utterances; dropped " + ", ".join(f"{v} from {k}" for k, v in r["dropped"].items()))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dlbox.tasks.asr.train import AsrConfig, train

    result = train(config_from_args(AsrConfig, args))
    if result is None:
        return 0

    def render(r) -> str:
        cer = f"{100 * r['dev_cer']:.2f}%" if r["dev_cer"] is not None else "- (no --dev)"
        text = (f"{'run':<12} {r['run_dir']}\n{'dev CER':<12} {cer}\n{'best epoch':<12} {r['best_epoch']} of {r['epochs']}\n"
                f"{'tokens':<12} {r['tokens']}\n{'time':<12} {r['seconds']:.1f} s ({r['utterances']} utterances)")  # fmt: skip
        if c := r.get("feature_cache"):
            text += (f"\n{'features':<12} {c['hits']} read from {c['dir']}, {c['computed']} computed"
                     + (f" ({c['repaired']} corrupt entries replaced)" if c["repaired"] else ""))  # fmt: skip
        return text

    emit(args, result, render)
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from dlbox.tasks.asr.transcribe import render, transcribe

    r = transcribe(args.model, args.inputs, beam=args.beam, allow_pipes=args.allow_pipes, threads=args.threads,
                   backend=args.backend)  # fmt: skip
    emit(args, r, render)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dlbox.tasks.asr.evaluate import evaluate, render

    r = evaluate(args.model, args.data, beam=args.beam, allow_pipes=args.allow_pipes, worst=args.worst, out=args.out,
                 threads=args.threads, backend=args.backend)  # fmt: skip
    emit(args, r, render)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dlbox.tasks.asr.export import export

    r = export(args.model, args.format, out=args.out)
    emit(args, r, lambda r: f"wrote {r['file']} and {r['tokens']}; parity with PyTorch: max |diff| = {r['max_abs_diff']:.2e}\n"
                            f"deploy: {r['sherpa_onnx']}")  # fmt: skip
    return 0


def _model_options(p) -> None:
    p.add_argument("model", help="a run directory, a checkpoint, an .onnx export (tokens.txt beside it), or hub:NAME")
    p.add_argument("--beam", type=number(int, ge=1), default=1, help="1: greedy search; N > 1: CTC prefix beam search of width N")
    p.add_argument("--threads", type=number(int, ge=1), help="intra-op threads (default: the runtime's)")
    p.add_argument("--backend", choices=["auto", "sherpa-onnx"], default="auto",
                   help="auto: PyTorch for runs, onnxruntime for .onnx; sherpa-onnx: an .onnx export through sherpa-onnx")  # fmt: skip
    p.add_argument("--allow-pipes", action="store_true", help="run wav.scp entries that are shell commands (trusted data only)")


def register(sub) -> None:
    from dlbox.tasks.asr.config import AsrConfig
    from dlbox.tasks.asr.prepare import CORPORA

    group = command(sub, "asr", "Mandarin speech recognition: prepare data, train a CTC model, transcribe, evaluate, export",
                    "dlbox asr train --data data/train --dev data/dev")  # fmt: skip
    asub = group.add_subparsers(dest="asr_command", metavar="SUBCOMMAND", parser_class=type(group), required=True)

    p = command(asub, "prepare", "a mirrored corpus (aishell, thchs30, st-cmds) or a folder of recordings -> Kaldi data dirs",
                "dlbox asr prepare aishell ~/corpora/aishell --out data/aishell")  # fmt: skip
    add_json(p)
    p.add_argument("corpus", choices=list(CORPORA), help="which corpus layout")
    p.add_argument("corpus_dir", help="the folder the corpus was extracted into (for folder: the recordings)")
    p.add_argument("--out", required=True, help="where the data directories go (train/, dev/, test/)")
    p.add_argument("--transcripts", help="folder only: a file of 'NAME TEXT' lines")
    p.set_defaults(func=cmd_prepare)

    p = command(asub, "synth", "a small Mandarin corpus spoken by espeak-ng (train/ and test/ with unseen sentences)",
                "dlbox asr synth --out data/synth")  # fmt: skip
    add_json(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--train", type=number(int, ge=1), default=240, help="training utterances (default: 240)")
    p.add_argument("--test", type=number(int, ge=1), default=40, help="test utterances, sentences not in training (default: 40)")
    p.add_argument("--seed", type=number(int, ge=0), default=0, help="(default: 0)")
    p.set_defaults(func=cmd_synth)

    p = command(asub, "fix", "keep only the utterances wav.scp, text and utt2spk all name (as Kaldi's fix_data_dir.sh)",
                "dlbox asr fix data/train")  # fmt: skip
    add_json(p)
    p.add_argument("data", help="a Kaldi data directory (rewritten in place)")
    p.set_defaults(func=cmd_fix)

    p = command(asub, "train", "train a CTC model (character vocabulary, CMVN, SpecAugment) on the engine",
                "dlbox asr train --data data/synth/train --dev data/synth/test --epochs 20")  # fmt: skip
    add_json(p)
    p.add_argument("--config", help="a YAML file of options (typed options win)")
    add_config_options(p, AsrConfig, title="speech recognition")
    p.set_defaults(func=cmd_train, command_path="dlbox asr train")

    p = command(asub, "transcribe", "text with per-token timestamps and the real-time factor",
                "dlbox asr transcribe runs/asr/NAME recording.wav --beam 4")  # fmt: skip
    add_json(p)
    _model_options(p)
    p.add_argument("inputs", nargs="+", help="wav/flac files, folders, a wav.scp, or a data directory")
    p.set_defaults(func=cmd_transcribe)

    p = command(asub, "evaluate", "CER (and WER) with substitutions, deletions, insertions and the worst utterances",
                "dlbox asr evaluate runs/asr/NAME --data data/synth/test")  # fmt: skip
    add_json(p)
    _model_options(p)
    p.add_argument("--data", required=True, help="a Kaldi data directory with reference text")
    p.add_argument("--worst", type=number(int, ge=0), default=5, help="how many of the worst utterances to list (default: 5)")
    p.add_argument("--out", help="write every utterance's reference, hypothesis and CER to this TSV file")
    p.set_defaults(func=cmd_evaluate)

    p = command(asub, "export", "ONNX + tokens.txt that sherpa-onnx's OfflineRecognizer.from_wenet_ctc loads",
                "dlbox asr export runs/asr/NAME --format onnx")  # fmt: skip
    add_json(p)
    p.add_argument("model", help="a run directory or checkpoint")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="(default: onnx)")
    p.add_argument("--out", help="output file (default: RUN/model.onnx; tokens.txt goes beside it)")
    p.set_defaults(func=cmd_export)
