"""`dlbox asr prepare|synth|fix|train|transcribe|evaluate|export`."""

from __future__ import annotations

from dlbox.cliutil import Command, call, group, lazy
from dlbox.tasks.asr import config


def render_train(r) -> str:
    cer = f"{100 * r['dev_cer']:.2f}%" if r["dev_cer"] is not None else "- (no --dev)"
    text = (f"{'run':<12} {r['run_dir']}\n{'dev CER':<12} {cer}\n{'best epoch':<12} {r['best_epoch']} of {r['epochs']}\n"
            f"{'tokens':<12} {r['tokens']}\n{'time':<12} {r['seconds']:.1f} s ({r['utterances']} utterances)")  # fmt: skip
    if c := r.get("feature_cache"):
        text += (f"\n{'features':<12} {c['hits']} read from {c['dir']}, {c['computed']} computed"
                 + (f" ({c['repaired']} corrupt entries replaced)" if c["repaired"] else ""))  # fmt: skip
    return text


COMMANDS = [
    Command("prepare", "a mirrored corpus (aishell, thchs30, st-cmds) or a folder of recordings -> Kaldi data dirs",
            "dlbox asr prepare aishell ~/corpora/aishell --out data/aishell",
            config.PrepareArgs, call("dlbox.tasks.asr.prepare:prepare"), lazy("dlbox.tasks.asr.prepare:render")),
    Command("synth", "a small Mandarin corpus spoken by espeak-ng (train/ and test/ with unseen sentences)",
            "dlbox asr synth --out data/synth",
            config.SynthArgs, call("dlbox.tasks.asr.synth:make_corpus", n_train="train", n_test="test"),
            lambda r: f"wrote {r['out']}/train ({r['train']} utterances) and {r['out']}/test ({r['test']}), "
                      f"{r['hours'] * 60:.1f} min of audio over {len(r['characters'])} characters"),
    Command("fix", "keep only the utterances wav.scp, text and utt2spk all name (as Kaldi's fix_data_dir.sh)",
            "dlbox asr fix data/train",
            config.FixArgs, call("dlbox.tasks.asr.data:fix_data_dir", path="data"),
            lambda r: f"kept {r['kept']} utterances; dropped " + ", ".join(f"{v} from {k}" for k, v in r["dropped"].items())),
    Command("train", "train a CTC model (character vocabulary, CMVN, SpecAugment) on the engine",
            "dlbox asr train --data data/synth/train --dev data/synth/test --epochs 20",
            config.AsrConfig, lazy("dlbox.tasks.asr.train:train"), render_train, train="speech recognition"),
    Command("transcribe", "text with per-token timestamps and the real-time factor",
            "dlbox asr transcribe runs/asr/NAME recording.wav --beam 4",
            config.TranscribeArgs, call("dlbox.tasks.asr.transcribe:transcribe", source="model"),
            lazy("dlbox.tasks.asr.transcribe:render")),
    Command("evaluate", "CER (and WER) with substitutions, deletions, insertions and the worst utterances",
            "dlbox asr evaluate runs/asr/NAME --data data/synth/test",
            config.EvaluateArgs, call("dlbox.tasks.asr.evaluate:evaluate", source="model"),
            lazy("dlbox.tasks.asr.evaluate:render")),
    Command("export", "ONNX + tokens.txt that sherpa-onnx's OfflineRecognizer.from_wenet_ctc loads",
            "dlbox asr export runs/asr/NAME --format onnx --register speech",
            config.ExportArgs, call("dlbox.tasks.asr.export:export", source="model", fmt="format"),
            lambda r: f"wrote {r['file']} and {r['tokens']}; parity with PyTorch: max |diff| = {r['max_abs_diff']:.2e}\n"
                      f"deploy: {r['sherpa_onnx']}"
                      + (f"\nregistered {r['registered']['uri']}" if r.get("registered") else "")),
]  # fmt: skip


register = group("asr", "Mandarin speech recognition: prepare data, train a CTC model, transcribe, evaluate, export",
                 "dlbox asr train --data data/train --dev data/dev", COMMANDS)  # fmt: skip
