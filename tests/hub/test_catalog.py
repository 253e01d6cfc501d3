"""Catalog integrity: what the issue asks for is there, every file is well formed, torchvision's entries are
exactly torchvision's weights; plus the list/info commands and test-only catalog files."""

from __future__ import annotations

import re

import pytest

from dlbox.base.errors import UserError
from dlbox.hub import catalog
from dlbox.hub.catalog import ModelEntry, file_problems
from tests.hub.conftest import entry_toml


@pytest.fixture(scope="module")
def entries():
    return catalog.list_entries()


def test_every_entry_has_urls_or_a_manual_note_and_well_formed_files(entries):
    problems = []
    for e in entries:
        if not e.files:
            problems.append(f"{e.name}: no files")
        for f in e.files:
            if f.url is None and not e.manual:
                problems.append(f"{e.name}/{f.name}: no url and no manual note")
            problems += [f"{e.name}/{f.name}: {p}" for p in file_problems(f)]
        if e.kind == "model" and not e.loader:
            problems.append(f"{e.name}: no loader")
        for text in (e.title, e.description, e.license, e.homepage):
            if not text.strip():
                problems.append(f"{e.name}: empty title/description/license/homepage")
    assert problems == []
    names = [n.lower() for e in entries for n in (e.name, *e.aliases)]
    assert len(names) == len(set(names)), "names and aliases are unique"


def test_a_file_without_a_hash_is_allowed_only_with_the_explicit_flag(entries):
    unhashed = [(e.name, f) for e in entries for f in e.files if not f.hashed]
    assert unhashed and all(f.no_hash_published for _, f in unhashed)
    assert {"zhwiki", "enwiki", "vggface2", "slim-inception_v3"} <= {n for n, _ in unhashed}
    assert {"mnist", "coco2017", "resnet18"}.isdisjoint({n for n, _ in unhashed})


def test_the_datasets_the_issue_asks_for_are_there(entries):
    by = {e.name: e for e in entries}
    for name, task in {"mnist": "classify", "cifar10": "classify", "tf_flowers": "classify",
                       "flowers102": "classify", "imagenet2012": "classify", "coco2017": "detect",
                       "voc2007": "detect", "voc2012": "detect", "thchs30": "speech", "aishell1": "speech",
                       "lfw": "face", "vggface2": "face", "zhwiki": "text", "enwiki": "text"}.items():  # fmt: skip
        assert by[name].kind == "dataset" and by[name].task == task, name
    assert by["imagenet2012"].manual and by["vggface2"].manual
    assert all(f.url is None for f in by["imagenet2012"].files)
    coco = {f.name for f in by["coco2017"].files}
    assert {"train2017.zip", "val2017.zip", "test2017.zip", "annotations_trainval2017.zip"} <= coco
    assert by["zhwiki"].files[0].name == "zhwiki-latest-pages-articles.xml.bz2"


def test_tf_slim_checkpoints_with_published_accuracy_and_explicit_background_class(entries):
    slim = {e.name: e for e in entries if isinstance(e, ModelEntry) and e.loader == "tf-slim"}
    expected = {"slim-inception_v1": (69.8, 89.6), "slim-inception_v2": (73.9, 91.8), "slim-inception_v3": (78.0, 93.9),
                "slim-inception_v4": (80.2, 95.2), "slim-inception_resnet_v2": (80.4, 95.3),
                "slim-resnet_v1_50": (75.2, 92.2), "slim-resnet_v1_101": (76.4, 92.9), "slim-resnet_v1_152": (76.8, 93.2),
                "slim-resnet_v2_50": (75.6, 92.8), "slim-resnet_v2_101": (77.0, 93.7), "slim-resnet_v2_152": (77.8, 94.1),
                "slim-vgg_16": (71.5, 89.8), "slim-vgg_19": (71.1, 89.8), "slim-mobilenet_v1_1.0_224": (70.9, 89.9),
                "slim-mobilenet_v2_1.4_224": (74.9, 92.5), "slim-nasnet_a_large": (82.7, 96.2),
                "slim-nasnet_a_mobile": (74.0, 91.6), "slim-pnasnet_5_large": (82.9, 96.2)}  # fmt: skip
    for name, (top1, top5) in expected.items():
        assert slim[name].metrics["ImageNet-1K"] == {"acc@1": top1, "acc@5": top5}, name
    # Google-trained checkpoints: 1001 outputs with 0 = background; the Caffe conversions: 1000, no background.
    assert (slim["slim-inception_v3"].num_classes, slim["slim-inception_v3"].background_class) == (1001, True)
    assert (slim["slim-vgg_16"].num_classes, slim["slim-vgg_16"].background_class) == (1000, False)
    assert (slim["slim-resnet_v1_50"].num_classes, slim["slim-resnet_v1_50"].background_class) == (1000, False)
    assert "converted by dlbox" in slim["slim-inception_v3"].loader_note
    assert "not converted" in slim["slim-inception_v2"].loader_note


def test_torchvision_entries_are_exactly_torchvisions_weights(entries):
    import torchvision.models as tvm

    tv = {e.weights_enum: e for e in entries if e.origin == "torchvision"}
    seen = set()
    for module, task in ((tvm, "classify"), (tvm.detection, "detect")):
        for model in tvm.list_models(module=module):
            enum = tvm.get_model_weights(model)
            for w in enum:
                key = f"{type(w).__name__}.{w.name}"
                seen.add(key)
                e = tv[key]
                assert catalog.get(f"{model}.{w.name}") is e
                assert (e.task, e.architecture, e.loader) == (task, model, f"torchvision:{model}")
                assert e.files[0].url == w.url and e.files[0].name == w.url.rsplit("/", 1)[1]
                assert re.search(rf"-{e.files[0].sha256_prefix}\.pth$", w.url)
                published = {ds: {k: v for k, v in m.items() if v == v} for ds, m in w.meta["_metrics"].items()}
                assert e.metrics == {ds: m for ds, m in published.items() if m}  # NaN = not published
                assert e.num_params == w.meta["num_params"] and e.gflops == w.meta["_ops"]
                categories = w.meta["categories"] or []  # None for VGG16's feature-only weights
                assert e.categories == (len(categories) or None) and e.num_classes == e.categories
                assert e.background_class == (categories[:1] == ["__background__"])
                if task == "classify":
                    t = w.transforms()
                    assert e.transforms["crop_size"] == t.crop_size[0] and e.transforms["mean"] == list(t.mean)
                    assert e.transforms["resize_size"] == t.resize_size[0] and e.transforms["std"] == list(t.std)
            assert catalog.get(model).weights_enum == f"{type(enum.DEFAULT).__name__}.{enum.DEFAULT.name}"
    assert seen == set(tv)


def test_an_unknown_name_is_an_error_naming_near_matches():
    with pytest.raises(UserError) as e:
        catalog.get("resnt18")
    assert "'resnet18'" in str(e.value)


def test_a_test_only_catalog_file_adds_entries_and_cannot_silently_shadow_one(extra_catalog):
    f = {"name": "w.pth", "url": "http://127.0.0.1:9/w.pth", "sha256": "0" * 64}
    extra_catalog(entry_toml("my-model", [f], kind="model", loader="torchvision:resnet18"))
    assert catalog.get("my-model").origin.endswith("extra-catalog.toml")
    extra_catalog(entry_toml("resnet18", [f], kind="model", loader="torchvision:resnet18"))
    with pytest.raises(UserError, match="add override = true"):
        catalog.get("resnet18")
    extra_catalog(entry_toml("resnet18", [f], kind="model", loader="torchvision:resnet18", override=True))
    assert catalog.get("resnet18").files[0].name == "w.pth"


@pytest.mark.parametrize("bad, message", [
    ({"name": "x.bin", "url": "http://h/x.bin"}, "no_hash_published = true"),
    ({"name": "x.bin", "url": "http://h/x.bin", "sha256": "abc"}, "64 lower-case hex"),
    ({"name": "x.bin", "url": "http://h/x.bin", "md5": "0" * 32, "size": -3}, "positive byte count"),
    ({"name": "../x.bin", "url": "http://h/x.bin", "md5": "0" * 32}, "plain file name"),
    ({"name": "x.bin", "url": "http://h/x.bin", "md5": "0" * 32, "sha25": "0" * 64}, "did you mean 'sha256'"),
])  # fmt: skip
def test_malformed_catalog_files_are_refused_with_the_reason(extra_catalog, bad, message):
    extra_catalog(entry_toml("broken", [bad]))
    with pytest.raises(UserError, match=re.escape(message)):
        catalog.get("broken")


def test_hub_list_json_filters_by_task(cli):
    res = cli("hub", "list", "--task", "detect", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in res.json()}
    assert {r["task"] for r in rows.values()} == {"detect"}
    assert {"coco2017", "voc2012", "fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn"} <= set(rows)
    assert rows["fasterrcnn_resnet50_fpn"]["metrics"] == {"COCO-val2017 box_map": 37.0}
    assert rows["coco2017"]["cached_files"] == 0 and rows["coco2017"]["size"] > 25e9


def test_an_unknown_task_suggests_the_near_one():
    with pytest.raises(UserError, match="unknown task 'detction'.*'detect'"):
        catalog.list_entries(task="detction")


def test_hub_info_json_gives_files_sizes_hashes_and_where_they_go(cli, hub_home):
    res = cli("hub", "info", "cifar10", "--json")
    assert res.returncode == 0, res.stderr
    d = res.json()
    (f,) = d["files"]
    assert (f["name"], f["size"], f["md5"], f["cached"]) == ("cifar-10-python.tar.gz", 170498071,
                                                             "c58f30108f718f92721af3b95e74349a", False)  # fmt: skip
    assert f["path"].startswith(str(hub_home / "hub" / "cifar10"))
    assert f["sources"] == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
