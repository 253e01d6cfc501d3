"""Vendor the parts of the Kubeflow CRDs' OpenAPI schemas that dlbox's manifests use (run by hand).

    python tests/cluster/schemas/prune.py kubeflow.org_pytorchjobs.yaml trainer.kubeflow.org_trainjobs.yaml

The CRDs (kubeflow/training-operator: manifests/base/crds/kubeflow.org_pytorchjobs.yaml at 374e88af, the last
commit with the v1 operator; kubeflow/trainer: manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml at
a55f03a8) are ~800 KB, mostly the pod template's schema. Kept: every object's property *names* (so a
misspelt or misplaced field is refused, as `kubectl apply --validate=strict` refuses it), and the full schema
(types, enums, patterns, required fields) of every property the manifests of `dlbox launch k8s` set; the schema
of a property they never set is left open. A path the manifests use that the CRD does not have stops this
script, which is the first check of the generator."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

LEAF_KEYS = ("type", "enum", "pattern", "format", "anyOf", "x-kubernetes-int-or-string", "minimum", "maximum",
             "maxLength", "minLength", "maxItems", "minItems", "x-kubernetes-preserve-unknown-fields")  # fmt: skip


def merge(a: Any, b: Any) -> Any:
    """Two example values as one: dicts by key, lists as one merged element."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: merge(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in {**a, **b}}
    if isinstance(a, list) and isinstance(b, list):
        items = a + b
        out = items[0] if items else None
        for x in items[1:]:
            out = merge(out, x)
        return [out] if items else []
    return a if a is not None else b


def prune(schema: dict, example: Any, path: str) -> dict:
    out = {k: v for k, v in schema.items() if k in LEAF_KEYS or k == "required"}
    if "properties" in schema:
        if not isinstance(example, dict):
            raise SystemExit(f"{path}: the manifests put a {type(example).__name__} where the CRD has an object")
        unknown = set(example) - set(schema["properties"])
        if unknown:
            raise SystemExit(f"{path}: fields the CRD does not have: {sorted(unknown)}")
        out["properties"] = {k: prune(v, example[k], f"{path}.{k}") if k in example else {}
                             for k, v in schema["properties"].items()}  # fmt: skip
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    elif isinstance(schema.get("additionalProperties"), dict) and isinstance(example, dict) and example:
        merged = None
        for v in example.values():
            merged = merge(merged, v)
        out["additionalProperties"] = prune(schema["additionalProperties"], merged, f"{path}.*")
    if "items" in schema and isinstance(example, list) and example:
        merged = example[0]
        for x in example[1:]:
            merged = merge(merged, x)
        out["items"] = prune(schema["items"], merged, f"{path}[]")
    elif "items" in schema:
        out["items"] = {}
    return out


def examples(kind: str) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from dlbox.launch.config import K8sArgs
    from dlbox.launch.k8s import manifest

    cmd = ["dlbox", "classify", "train", "--data", "/data/digits"]
    variants = [dict(nodes=2, gpus_per_node=8, runs_pvc="runs", data_pvc="data", cpus_per_node=16, memory="64Gi"),
                dict(nodes=1), dict(nodes=3, iface="eth0"), dict(nodes=4, min_nodes=2)]  # fmt: skip
    out = []
    for v in variants:
        if kind == "trainjob" and "min_nodes" in v:
            continue  # a TrainJob's elastic policy is its runtime's
        c = K8sArgs(command=list(cmd), image="registry/dlbox:1", kind=kind, **v)
        c.validate()
        out.append(manifest(c)[0])
    return out


def main(pytorchjob_crd: str, trainjob_crd: str) -> None:
    here = Path(__file__).parent
    for crd, kind, version, name in ((pytorchjob_crd, "pytorchjob", "v1", "pytorchjob.v1.json"),
                                     (trainjob_crd, "trainjob", "v1alpha1", "trainjob.v1alpha1.json")):  # fmt: skip
        doc = yaml.safe_load(Path(crd).read_text())
        (ver,) = [v for v in doc["spec"]["versions"] if v["name"] == version]
        merged = None
        for ex in examples(kind):
            merged = merge(merged, ex)
        schema = prune(ver["schema"]["openAPIV3Schema"], merged, kind)
        schema["$comment"] = f"pruned from {Path(crd).name} ({version}) by tests/cluster/schemas/prune.py"
        (here / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"{name}: {len(json.dumps(schema)) // 1024} KB")


if __name__ == "__main__":
    main(*sys.argv[1:3])
