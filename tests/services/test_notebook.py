"""`dlbox notebook`: a real JupyterLab on a free loopback port, its API behind the token, a kernel of this
interpreter with dlbox, the shipped notebooks in the working folder, the token in no log."""

from __future__ import annotations

import json
import sys

import pytest

from dlbox.services import notebook
from tests.conftest import ROOT
from tests.services.helpers import alive, http_get, started, stop


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("notebook")
    with started("notebook", "--dir", "work", cwd=cwd) as (doc, proc, err_path):
        yield {"doc": doc, "proc": proc, "err": err_path, "cwd": cwd}


def test_api_answers_200_with_the_token_and_403_without(jupyter):
    api, token = jupyter["doc"]["api"], jupyter["doc"]["token"]
    assert http_get(f"{api}/status")[0] == 403
    assert http_get(f"{api}/status", token="0" * len(token))[0] == 403
    status, body = http_get(f"{api}/status", token=token)
    assert status == 200 and "started" in json.loads(body)
    assert jupyter["doc"]["url"].endswith(f"/lab?token={token}")


def test_default_kernel_is_this_interpreter_importing_this_dlbox(jupyter):
    status, body = http_get(f"{jupyter['doc']['api']}/kernelspecs", token=jupyter["doc"]["token"])
    specs = json.loads(body)
    assert status == 200 and specs["default"] == "dlbox"
    spec = specs["kernelspecs"]["dlbox"]["spec"]
    assert spec["argv"][0] == sys.executable
    assert str(ROOT) in spec["env"]["PYTHONPATH"].split(":")


def test_shipped_notebooks_are_copied_into_the_working_folder(jupyter):
    shipped = {p.name for p in notebook.shipped_notebooks()}
    assert {"classify.ipynb", "detect.ipynb", "word2vec.ipynb"} <= shipped
    assert set(jupyter["doc"]["copied"]) == shipped
    work = jupyter["cwd"] / "work"
    assert {p.name for p in work.glob("*.ipynb")} == shipped
    assert (work / "classify.ipynb").read_bytes() == (ROOT / "notebooks" / "classify.ipynb").read_bytes()
    status, body = http_get(f"{jupyter['doc']['api']}/contents", token=jupyter["doc"]["token"])
    assert status == 200 and shipped <= {item["name"] for item in json.loads(body)["content"]}


def test_the_token_is_printed_once_and_logged_nowhere(jupyter):
    token = jupyter["doc"]["token"]
    assert http_get(f"{jupyter['doc']['api']}/status", token=token)[0] == 200
    log = jupyter["err"].read_text()
    assert "Jupyter Server" in log and "?token=..." in log  # Jupyter's own log line, token masked
    assert token not in log
    assert not list((jupyter["cwd"] / "work").rglob("*jpserver*"))  # runtime files stay out of the folder


def test_first_start_copies_once_and_never_overwrites(tmp_path):
    (tmp_path / "classify.ipynb").write_text("{}")  # the user's own file of that name
    copied = notebook.prepare_workdir(tmp_path)
    assert "classify.ipynb" not in copied and "detect.ipynb" in copied
    assert (tmp_path / "classify.ipynb").read_text() == "{}"
    (tmp_path / "detect.ipynb").unlink()
    assert notebook.prepare_workdir(tmp_path) == []  # not the first start: nothing comes back
    assert not (tmp_path / "detect.ipynb").exists()


def test_ctrl_c_stops_jupyterlab(jupyter):
    # Last in this file on purpose: it stops the module's server (run alone, it starts its own).
    assert stop(jupyter["proc"]) == 0
    assert "JupyterLab stopped" in jupyter["err"].read_text()
    assert not alive(jupyter["doc"]["pid"])
