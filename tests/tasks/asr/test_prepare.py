"""`dlbox asr prepare` on tiny fakes of the mirrored corpora, in their real directory layouts: the data
directories (ids, speakers, splits, normalised text) match what Kaldi's and lhotse's recipes make of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlbox.base.errors import UserError
from dlbox.tasks.asr.data import read_data_dir
from dlbox.tasks.asr.prepare import normalize_transcript, prepare
from tests.conftest import assert_user_error, run_main
from tests.tasks.asr.test_data import tone


def table(path: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines())


def split_sizes(summary: dict) -> dict[str, int]:
    return {k: v["utterances"] for k, v in summary["splits"].items()}


# --- AISHELL-1 -------------------------------------------------------------------------------------------
AISHELL = {  # utterance -> (split, speaker, transcript line as in aishell_transcript_v0.8.txt: words)
    "BAC009S0002W0122": ("train", "S0002", "而 对 楼市 成交 抑制 作用 最 大 的 限 购"),
    "BAC009S0002W0123": ("train", "S0002", "也 成为 地方 政府 的 眼中 钉"),
    "BAC009S0003W0121": ("train", "S0003", "ｋ 线 图 显示"),  # full-width letters occur in the real text
    "BAC009S0724W0121": ("dev", "S0724", "甚至 出现 交易 几乎 停滞 的 情况"),
    "BAC009S0764W0121": ("test", "S0764", "甚至 出现 交易 几乎 停滞 的 情况"),
}


def fake_aishell(root: Path) -> Path:
    base = root / "data_aishell"
    for utt, (split, spk, _) in AISHELL.items():
        (base / "wav" / split / spk).mkdir(parents=True, exist_ok=True)
        tone(base / "wav" / split / spk / f"{utt}.wav", seconds=0.3)
    tone(base / "wav" / "test" / "S0764" / "BAC009S0764W0999.wav", seconds=0.3)  # no transcript: left out
    (base / "transcript").mkdir()
    lines = [f"{u} {t}" for u, (_, _, t) in AISHELL.items()] + ["BAC009S0916W0495 不在 这 份 语料 里"]
    (base / "transcript" / "aishell_transcript_v0.8.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "resource_aishell").mkdir()
    (root / "resource_aishell" / "lexicon.txt").write_text("SIL sil\n", encoding="utf-8")
    return root


def test_prepare_aishell_keeps_its_splits_speaker_folders_and_word_spaced_text(tmp_path, capsys):
    corpus = fake_aishell(tmp_path / "aishell")
    res = run_main(capsys, "asr", "prepare", "aishell", corpus, "--out", tmp_path / "data", "--json")
    assert res.returncode == 0, res.stderr
    r = res.json()
    assert split_sizes(r) == {"train": 3, "dev": 1, "test": 1} and r["untranscribed"] == 1
    assert r["splits"]["train"]["max_s"] == 0.3
    train = tmp_path / "data" / "train"
    assert table(train / "utt2spk") == {"BAC009S0002W0122": "S0002", "BAC009S0002W0123": "S0002",
                                        "BAC009S0003W0121": "S0003"}  # fmt: skip
    assert (train / "spk2utt").read_text() == "S0002 BAC009S0002W0122 BAC009S0002W0123\nS0003 BAC009S0003W0121\n"
    assert table(train / "text")["BAC009S0002W0122"] == "而 对 楼市 成交 抑制 作用 最 大 的 限 购"
    assert table(train / "text")["BAC009S0003W0121"] == "K 线 图 显示"  # as WeNet's and lhotse's normalisation
    wavs = table(train / "wav.scp")
    assert wavs["BAC009S0003W0121"] == str((corpus / "data_aishell/wav/train/S0003/BAC009S0003W0121.wav").resolve())
    assert [u.utt for u in read_data_dir(tmp_path / "data" / "test").utts] == ["BAC009S0764W0121"]
    # the folder holding data_aishell, or data_aishell itself
    assert split_sizes(prepare("aishell", str(corpus / "data_aishell"), str(tmp_path / "d2"))) == split_sizes(r)


def test_bad_aishell_layouts_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert_user_error(run_main(capsys, "asr", "prepare", "aishell", tmp_path / "empty", "--out", tmp_path / "o"),
                      "has no data_aishell")  # fmt: skip
    packed = tmp_path / "packed" / "data_aishell"
    (packed / "wav").mkdir(parents=True)
    (packed / "wav" / "S0002.tar.gz").write_bytes(b"")
    (packed / "transcript").mkdir()
    (packed / "transcript" / "aishell_transcript_v0.8.txt").write_text("BAC009S0002W0122 而\n", encoding="utf-8")
    with pytest.raises(UserError, match="per-speaker archives, not extracted"):
        prepare("aishell", str(tmp_path / "packed"), str(tmp_path / "o"))
    corpus = fake_aishell(tmp_path / "nt")
    (corpus / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt").unlink()
    with pytest.raises(UserError, match="aishell_transcript_v0.8.txt does not exist"):
        prepare("aishell", str(corpus), str(tmp_path / "o"))


# --- THCHS-30 --------------------------------------------------------------------------------------------
THCHS = {"A11_0": "train", "A2_33": "train", "C12_510": "dev", "D4_750": "test"}
TRN = "绿 是 阳春 烟 景 大块 文章 的 底色\nlv4 shi4 yang2 chun1\nl v4 sh ix4\n"  # words, pinyin, phones


def fake_thchs30(root: Path) -> Path:
    base = root / "data_thchs30"
    (base / "data").mkdir(parents=True)
    for name, split in THCHS.items():
        (base / split).mkdir(exist_ok=True)
        tone(base / "data" / f"{name}.wav", seconds=0.2)
        (base / "data" / f"{name}.wav.trn").write_text(TRN, encoding="utf-8")
        tone(base / split / f"{name}.wav", seconds=0.2)
        (base / split / f"{name}.wav.trn").write_text(f"../data/{name}.wav.trn\n")  # the split's .trn points to data/
    (base / "lm_word").mkdir()
    return root


def test_prepare_thchs30_uses_its_splits_kaldi_ids_and_the_word_line(tmp_path):
    r = prepare("thchs30", str(fake_thchs30(tmp_path / "thchs")), str(tmp_path / "data"))
    assert split_sizes(r) == {"train": 2, "dev": 1, "test": 1}
    train = tmp_path / "data" / "train"
    assert table(train / "utt2spk") == {"A02_033": "A02", "A11_000": "A11"}  # egs/thchs30's zero-padded ids
    assert set(table(train / "text").values()) == {"绿 是 阳春 烟 景 大块 文章 的 底色"}
    assert table(train / "wav.scp")["A02_033"].endswith("data_thchs30/train/A2_33.wav")
    assert table(tmp_path / "data" / "test" / "utt2spk") == {"D04_750": "D04"}


def test_bad_thchs30_layouts_are_one_line(tmp_path):
    corpus = fake_thchs30(tmp_path / "thchs")
    (corpus / "data_thchs30" / "data" / "C12_510.wav.trn").unlink()
    with pytest.raises(UserError, match=r"C12_510.wav has no transcript .*data/C12_510.wav.trn"):
        prepare("thchs30", str(corpus), str(tmp_path / "o"))
    with pytest.raises(UserError, match="has no data_thchs30"):
        prepare("thchs30", str(corpus / "data_thchs30" / "train"), str(tmp_path / "o"))


# --- Free ST Chinese Mandarin Corpus -----------------------------------------------------------------------
def fake_st_cmds(root: Path, speakers: int = 25) -> Path:
    base = root / "ST-CMDS-20170001_1-OS"
    base.mkdir(parents=True)
    for s in range(1, speakers + 1):
        for session, n in (("A", 1), ("I", 2)) if s == 1 else (("A", 1),):  # speaker 1: two sessions
            stem = f"20170001P{s:05d}{session}{n:04d}"
            tone(base / f"{stem}.wav", seconds=0.2)
            (base / f"{stem}.txt").write_text("今天天气怎么样，", encoding="utf-8")
            (base / f"{stem}.metadata").write_text(f"LHD\tMandarin\nSES\t20170001P{s:05d}{session}\nFIL\t{stem}.wav\n")
    return root


def test_prepare_st_cmds_holds_out_speakers_for_dev_and_test(tmp_path):
    r = prepare("st-cmds", str(fake_st_cmds(tmp_path / "st")), str(tmp_path / "data"))
    assert split_sizes(r) == {"train": 22, "dev": 2, "test": 2}  # 25 speakers: a tenth (2) each held out
    spk = {split: table(tmp_path / "data" / split / "utt2spk") for split in ("train", "dev", "test")}
    assert set(spk["test"].values()) == {"P00024", "P00025"} and set(spk["dev"].values()) == {"P00022", "P00023"}
    # the speaker is P + 5 digits (Kaldi's multi_cn and lhotse); the session letter is not part of it
    assert spk["train"]["20170001P00001A0001"] == spk["train"]["20170001P00001I0002"] == "P00001"
    assert (tmp_path / "data" / "train" / "spk2utt").read_text().startswith("P00001 20170001P00001A0001 20170001P00001I0002\n")
    assert set(table(tmp_path / "data" / "dev" / "text").values()) == {"今天天气怎么样"}  # punctuation dropped
    few = prepare("st-cmds", str(fake_st_cmds(tmp_path / "few", speakers=4)), str(tmp_path / "few_data"))
    assert split_sizes(few) == {"train": 3, "dev": 1, "test": 1}  # 5 utterances, 1 speaker each held out


def test_bad_st_cmds_layouts_are_one_line(tmp_path, capsys):
    corpus = fake_st_cmds(tmp_path / "st", speakers=3)
    base = corpus / "ST-CMDS-20170001_1-OS"
    (base / "20170001P00002A0001.txt").unlink()
    assert_user_error(run_main(capsys, "asr", "prepare", "st-cmds", corpus, "--out", tmp_path / "o"),
                      "20170001P00002A0001.wav has no transcript 20170001P00002A0001.txt")  # fmt: skip
    (base / "20170001P00002A0001.txt").write_text("你好", encoding="utf-8")
    tone(base / "hello.wav")
    with pytest.raises(UserError, match="hello.wav is not named like an ST-CMDS utterance"):
        prepare("st-cmds", str(corpus), str(tmp_path / "o"))
    (base / "hello.wav").unlink()
    (base / "20170001P00003A0001.wav").write_bytes(b"")
    with pytest.raises(UserError, match="20170001P00003A0001.wav is an empty file"):
        prepare("st-cmds", str(corpus), str(tmp_path / "o"))


def test_transcripts_are_normalised_as_the_recipes_do():
    assert normalize_transcript("而 对　楼市，成交ＫＴＶ。 “好” abc ３") == "而 对 楼市 成交KTV 好 ABC 3"
