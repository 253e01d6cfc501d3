"""Caffe's file formats without Caffe: prototxt (protobuf text format) and caffemodel (protobuf wire format)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from dlbox.base.errors import UserError
from dlbox.convert.caffe.textformat import parse
from dlbox.convert.caffe.wire import _enc_varint, _field, read_caffemodel, write_caffemodel
from tests.conftest import assert_user_error, run_main

TEXT = r"""
# a comment
name: "net"   # trailing comment
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer {
  name: 'conv/1' type: "Convolution" bottom: "data" top: "c1"
  param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param: { num_output: 4 kernel_size: [3, 3] pad: 1 weight_filler { type: "gaussian" std: -1.5e-2 } }
  include { phase: TEST }
}
layer < name: "s" type: "Softmax" bottom: "c1" top: "p"; >
note: "tab\tand \"quotes\"" " joined"
"""


def test_prototxt_fields_nest_repeat_and_keep_their_types():
    net = parse(TEXT)
    assert net.get("name") == "net" and net.all("input") == ["data"]
    assert net.msg("input_shape").all("dim") == [1, 3, 8, 8]
    conv, soft = net.all("layer")
    assert conv.get("name") == "conv/1"
    assert [p.get("lr_mult") for p in conv.all("param")] == [1, 2] and conv.all("param")[1].get("decay_mult") == 0
    cp = conv.msg("convolution_param")
    assert cp.all("kernel_size") == [3, 3] and cp.get("pad") == 1
    assert cp.msg("weight_filler").get("std") == pytest.approx(-0.015)
    assert conv.msg("include").get("phase") == "TEST"  # enum values stay names
    assert soft.get("type") == "Softmax" and soft.get("top") == "p"
    assert net.get("note") == 'tab\tand "quotes" joined'
    assert not net.msg("absent").has("anything")  # absent sub-messages read as empty (defaults apply)


@pytest.mark.parametrize(
    "text, line, what",
    [("name: \"a\"\nlayer {\n  name: \"b\"\n", 4, "missing '}'"), ("layer {\n  name \"b\" }", 2, "expected ':'"),
     ("a: 1\nb: }", 2, "expected a value")],
    ids=["unclosed", "no-colon", "no-value"],
)  # fmt: skip
def test_prototxt_syntax_error_names_the_line(text, line, what):
    with pytest.raises(UserError) as e:
        parse(text, "net.prototxt")
    assert f"net.prototxt:{line}:" in str(e.value) and what in str(e.value)


def test_caffemodel_round_trip_keeps_names_types_and_shapes(tmp_path):
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) - 7.5
    b = np.array([0.25, -1e-8], np.float32)
    write_caffemodel(tmp_path / "m.caffemodel", "net", [("conv/1", "Convolution", [w, b]), ("bn", "BatchNorm", [b, b, np.ones(1, np.float32)])])
    got = read_caffemodel(tmp_path / "m.caffemodel")
    assert list(got) == ["conv/1", "bn"]
    np.testing.assert_array_equal(got["conv/1"][0], w)
    np.testing.assert_array_equal(got["conv/1"][1], b)
    assert got["bn"][2].shape == (1,)


def test_old_caffemodel_layout_is_read(tmp_path):
    """V1 `layers` (field 2, name = 4, blobs = 6), a 4-D num/channels/height/width blob, unpacked floats."""
    values = [1.5, -2.0, 3.25, 0.0, 4.0, -5.5]
    blob = b"".join(_enc_varint(k << 3) + _enc_varint(v) for k, v in ((1, 1), (2, 1), (3, 2), (4, 3)))
    blob += b"".join(_enc_varint(5 << 3 | 5) + struct.pack("<f", v) for v in values)
    layer = _field(4, b"ip") + _enc_varint(5 << 3) + _enc_varint(14) + _field(6, blob)
    (tmp_path / "old.caffemodel").write_bytes(_field(1, b"old") + _field(2, layer))
    (arr,) = read_caffemodel(tmp_path / "old.caffemodel")["ip"]
    assert arr.shape == (1, 1, 2, 3) and arr.ravel().tolist() == values


def test_truncated_caffemodel_is_one_line_error(tmp_path, capsys):
    write_caffemodel(tmp_path / "m.caffemodel", "net", [("ip", "InnerProduct", [np.ones((4, 8), np.float32)])])
    data = (tmp_path / "m.caffemodel").read_bytes()
    (tmp_path / "cut.caffemodel").write_bytes(data[: len(data) // 2])
    (tmp_path / "n.prototxt").write_text('input: "x" input_shape { dim: 1 dim: 8 }\n'
                                         'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 4 } }')  # fmt: skip
    res = run_main(capsys, "caffe", "import", tmp_path / "n.prototxt", tmp_path / "cut.caffemodel", "--out", tmp_path / "m.pt")
    assert_user_error(res, "cut.caffemodel", "not a valid .caffemodel")


def test_v1_prototxt_layer_types_are_understood():
    from dlbox.convert.caffe.net import CaffeNet

    net = CaffeNet(parse('input: "x" input_dim: 2 input_dim: 4 input_dim: 1 input_dim: 1\n'
                         'layers { name: "ip" type: INNER_PRODUCT bottom: "x" top: "y" inner_product_param { num_output: 3 } }\n'
                         'layers { name: "r" type: RELU bottom: "y" top: "y" }'))  # fmt: skip
    assert [s.type for s in net.plans["TEST"]] == ["InnerProduct", "ReLU"] and net.outputs["TEST"] == ["y"]
    assert net.input_shapes["TEST"] == {"x": (2, 4, 1, 1)}
