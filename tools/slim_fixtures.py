"""Build TF-Slim networks in TensorFlow itself, save random-weight checkpoints and their logits: the fixtures
of tests/hub/test_slim.py (dlbox reads them without TensorFlow and must give the same logits).

Runs in its own venv (tf_slim needs TensorFlow <= 2.15; dlbox's venv has a newer one):

    python3.11 -m venv /tmp/tfslim-venv
    /tmp/tfslim-venv/bin/pip install "tensorflow-cpu==2.15.*" "tf-keras==2.15.*" tf-slim
    /tmp/tfslim-venv/bin/python tools/slim_fixtures.py --out tests/hub/fixtures/slim

The graphs follow tensorflow/models research/slim/nets (not on PyPI) scope for scope, built with tf_slim's
layers and arg scopes as there, at reduced width (a depth multiplier; ResNet also with fewer units per block)
so the checkpoints stay small. Variable names, layer order, strides, padding, BatchNorm settings and the
logits layer are those of the nets; only channel counts (and ResNet's unit counts) are smaller.

Why reduced width, and not smaller files of full-width weights: the full checkpoints are 90-220 MB, and a
file that only seeds the weights would not be one TensorFlow wrote. At reduced width every fixture is a real
TF-written bundle, its logits computed by TensorFlow on TF-Slim's layer definitions, and the PyTorch side
(torchvision/timm modules resized to the checkpoint's shapes) is checked on the same graph structure: block
counts, branch order, strides, paddings and the pooling rules are full size. Inception V3 uses the nets' own
``depth_multiplier`` (0.0625, min_depth 16); Inception V4 and Inception-ResNet-v2 have none in the nets, so
every width is max(int(width * 0.0625), 8) here, with all 4+7+3 (V4) and 10+20+9+1 (IRv2) blocks kept; the
auxiliary heads are built and saved (real checkpoints have them) but only the main logits are compared.
The 1001-class logits layers are the largest tensors left (about half of each new fixture, 0.8-1.9 MB).
NASNet-A and PNASNet-5 Large (nets/nasnet: nasnet.py, pnasnet.py, nasnet_utils.py; neither is in the
tf_slim package) keep all their cells, both reductions and the stem, with the nets' own hyperparameters
``num_conv_filters`` 8 and ``stem_multiplier`` 0.25, and 10 classes; their BatchNorm statistics are set from
the fixture's input (``calibrate_batch_norm``: 20 cells without residuals otherwise blow up to logits of 1e4).

    /tmp/tfslim-venv/bin/python tools/slim_fixtures.py --check-full-size

builds the same functions at full width and compares their parameter counts with those published for
TF-Slim's own nets (all equal when last run), so the builders are the nets and not only look like them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_slim():
    # tf_slim imports tf_keras.legacy_tf_layers, which tf-keras 2.15 keeps under tf_keras.src
    import tf_keras.src.legacy_tf_layers as legacy

    sys.modules.setdefault("tf_keras.legacy_tf_layers", legacy)
    for sub in ("base", "convolutional", "core", "normalization", "pooling", "variable_scope_shim"):
        try:
            sys.modules.setdefault(f"tf_keras.legacy_tf_layers.{sub}", importlib.import_module(f"tf_keras.src.legacy_tf_layers.{sub}"))
        except ImportError:
            pass
    import tensorflow.compat.v1 as tf
    import tf_slim as slim

    tf.disable_v2_behavior()
    return tf, slim


tf, slim = _import_slim()


# --- nets/inception_v1.py (inception_utils.inception_arg_scope: BN without gamma, epsilon 0.001) ----------

V1_MIXED = {  # end point: (b0, b1a, b1b, b2a, b2b, b3)
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}  # fmt: skip


def inception_v1(x, num_classes: int, mult: float):
    d = lambda n: max(int(n * mult), 8)  # noqa: E731
    bn = {"decay": 0.9997, "epsilon": 0.001, "scale": False, "is_training": False}
    with slim.arg_scope([slim.conv2d], activation_fn=tf.nn.relu, normalizer_fn=slim.batch_norm, normalizer_params=bn):
        with tf.variable_scope("InceptionV1"), slim.arg_scope([slim.conv2d, slim.max_pool2d], stride=1, padding="SAME"):
            net = slim.conv2d(x, d(64), [7, 7], stride=2, scope="Conv2d_1a_7x7")
            net = slim.max_pool2d(net, [3, 3], stride=2, scope="MaxPool_2a_3x3")
            net = slim.conv2d(net, d(64), [1, 1], scope="Conv2d_2b_1x1")
            net = slim.conv2d(net, d(192), [3, 3], scope="Conv2d_2c_3x3")
            net = slim.max_pool2d(net, [3, 3], stride=2, scope="MaxPool_3a_3x3")
            for name, (b0, b1a, b1b, b2a, b2b, b3) in V1_MIXED.items():
                if name == "Mixed_4b":
                    net = slim.max_pool2d(net, [3, 3], stride=2, scope="MaxPool_4a_3x3")
                if name == "Mixed_5b":
                    net = slim.max_pool2d(net, [2, 2], stride=2, scope="MaxPool_5a_2x2")
                with tf.variable_scope(name):
                    with tf.variable_scope("Branch_0"):
                        br0 = slim.conv2d(net, d(b0), [1, 1], scope="Conv2d_0a_1x1")
                    with tf.variable_scope("Branch_1"):
                        br1 = slim.conv2d(net, d(b1a), [1, 1], scope="Conv2d_0a_1x1")
                        br1 = slim.conv2d(br1, d(b1b), [3, 3], scope="Conv2d_0b_3x3")
                    with tf.variable_scope("Branch_2"):
                        br2 = slim.conv2d(net, d(b2a), [1, 1], scope="Conv2d_0a_1x1")
                        # the nets' own spelling: Mixed_5b's second Branch_2 conv is "Conv2d_0a_3x3"
                        br2 = slim.conv2d(br2, d(b2b), [3, 3], scope="Conv2d_0a_3x3" if name == "Mixed_5b" else "Conv2d_0b_3x3")
                    with tf.variable_scope("Branch_3"):
                        br3 = slim.max_pool2d(net, [3, 3], scope="MaxPool_0a_3x3")
                        br3 = slim.conv2d(br3, d(b3), [1, 1], scope="Conv2d_0b_1x1")
                    net = tf.concat(axis=3, values=[br0, br1, br2, br3])
            with tf.variable_scope("Logits"):
                net = slim.avg_pool2d(net, [7, 7], stride=1, padding="VALID", scope="AvgPool_0a_7x7")
                logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="Conv2d_0c_1x1")
                return tf.squeeze(logits, [1, 2])


# --- nets/resnet_v1.py + resnet_utils.py (resnet_arg_scope: BN with gamma, epsilon 1e-5) ------------------


def _conv2d_same(x, depth, k, stride, scope):
    if stride == 1:
        return slim.conv2d(x, depth, k, stride=1, padding="SAME", scope=scope)
    pad = k - 1
    x = tf.pad(x, [[0, 0], [pad // 2, pad - pad // 2], [pad // 2, pad - pad // 2], [0, 0]])
    return slim.conv2d(x, depth, k, stride=stride, padding="VALID", scope=scope)


def _bottleneck(x, depth, depth_bottleneck, stride):
    with tf.variable_scope("bottleneck_v1"):
        depth_in = x.get_shape()[-1]
        if depth == depth_in:
            shortcut = x if stride == 1 else slim.max_pool2d(x, [1, 1], stride=stride, scope="shortcut")
        else:
            shortcut = slim.conv2d(x, depth, [1, 1], stride=stride, activation_fn=None, scope="shortcut")
        r = slim.conv2d(x, depth_bottleneck, [1, 1], stride=1, scope="conv1")
        r = _conv2d_same(r, depth_bottleneck, 3, stride, scope="conv2")
        r = slim.conv2d(r, depth, [1, 1], stride=1, activation_fn=None, scope="conv3")
        return tf.nn.relu(shortcut + r)


def resnet_v1(x, num_classes: int, base_depths, units, scope: str):
    bn = {"decay": 0.997, "epsilon": 1e-5, "scale": True, "is_training": False}
    with slim.arg_scope([slim.conv2d], activation_fn=tf.nn.relu, normalizer_fn=slim.batch_norm, normalizer_params=bn), \
            slim.arg_scope([slim.max_pool2d], padding="SAME"), tf.variable_scope(scope):  # fmt: skip
        net = _conv2d_same(x, 64, 7, 2, scope="conv1")
        net = slim.max_pool2d(net, [3, 3], stride=2, scope="pool1")
        strides = [2, 2, 2, 1]  # resnet_v1_block: the stride sits on the LAST unit of blocks 1-3
        for b, (base, n, stride) in enumerate(zip(base_depths, units, strides, strict=True)):
            with tf.variable_scope(f"block{b + 1}"):
                for i in range(n):
                    with tf.variable_scope(f"unit_{i + 1}"):
                        net = _bottleneck(net, base * 4, base, stride if i == n - 1 else 1)
        net = tf.reduce_mean(net, [1, 2], keepdims=True, name="pool5")
        logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="logits")
        return tf.squeeze(logits, [1, 2])


# --- nets/mobilenet_v1.py (mobilenet_v1_arg_scope: relu6, BN with gamma, epsilon 0.001) -------------------

MOBILENET_V1_DEFS = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512), (1, 512),
                     (1, 512), (1, 512), (2, 1024), (1, 1024)]  # fmt: skip  # after Conv2d_0 (stride 2, 32)


def mobilenet_v1(x, num_classes: int, mult: float):
    d = lambda n: max(int(n * mult), 8)  # noqa: E731
    bn = {"center": True, "scale": True, "decay": 0.9997, "epsilon": 0.001, "is_training": False}
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d], activation_fn=tf.nn.relu6,
                        normalizer_fn=slim.batch_norm, normalizer_params=bn, padding="SAME"), \
            tf.variable_scope("MobilenetV1"):  # fmt: skip
        net = slim.conv2d(x, d(32), [3, 3], stride=2, scope="Conv2d_0")
        for i, (stride, depth) in enumerate(MOBILENET_V1_DEFS, 1):
            net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1, stride=stride, scope=f"Conv2d_{i}_depthwise")
            net = slim.conv2d(net, d(depth), [1, 1], stride=1, scope=f"Conv2d_{i}_pointwise")
        with tf.variable_scope("Logits"):
            shape = net.get_shape().as_list()
            net = slim.avg_pool2d(net, [min(shape[1], 7), min(shape[2], 7)], padding="VALID", scope="AvgPool_1a")
            logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="Conv2d_1c_1x1")
            return tf.squeeze(logits, [1, 2])


# --- nets/mobilenet/mobilenet_v2.py + conv_blocks.expanded_conv (relu6, BN with gamma, epsilon 0.001) ------

MOBILENET_V2_DEFS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                     (6, 320, 1, 1)]  # fmt: skip  # (expansion, depth, units, stride of the first unit)


def _make_divisible(v, divisor=8, min_value=None):  # nets/mobilenet/mobilenet.py
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def mobilenet_v2(x, num_classes: int, mult: float):
    d = lambda n: _make_divisible(n * mult, 8, 8)  # noqa: E731  # lib.depth_multiplier
    bn = {"center": True, "scale": True, "decay": 0.997, "is_training": False}
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d], activation_fn=tf.nn.relu6,
                        normalizer_fn=slim.batch_norm, normalizer_params=bn, padding="SAME"), \
            tf.variable_scope("MobilenetV2"):  # fmt: skip
        net = slim.conv2d(x, d(32), [3, 3], stride=2, scope="Conv")
        i = 0
        for t, c, n, s in MOBILENET_V2_DEFS:
            for u in range(n):
                with tf.variable_scope("expanded_conv" if i == 0 else f"expanded_conv_{i}"):
                    inp, prev = net, net.get_shape().as_list()[-1]
                    inner = _make_divisible(prev * t, 8) if t > 1 else prev  # expand_input_by_factor
                    if inner > prev:
                        net = slim.conv2d(net, inner, [1, 1], scope="expand")
                    net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1, stride=s if u == 0 else 1,
                                                scope="depthwise")  # fmt: skip
                    net = slim.conv2d(net, d(c), [1, 1], activation_fn=tf.identity, scope="project")
                    if (s if u == 0 else 1) == 1 and net.get_shape().as_list()[-1] == prev:
                        net = net + inp
                i += 1
        net = slim.conv2d(net, d(1280), [1, 1], scope="Conv_1")
        with tf.variable_scope("Logits"):
            net = tf.reduce_mean(net, [1, 2], keepdims=True)
            logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="Conv2d_1c_1x1")
            return tf.squeeze(logits, [1, 2])


# --- nets/vgg.py (no BatchNorm; fc6/fc7/fc8 are convolutions: 7x7 VALID, then 1x1) ------------------------

VGG_REPEATS = {"vgg_16": (2, 2, 3, 3, 3), "vgg_19": (2, 2, 4, 4, 4)}


def vgg(x, num_classes: int, scope: str, widths, fc: int):
    with tf.variable_scope(scope), slim.arg_scope([slim.conv2d], activation_fn=tf.nn.relu, padding="SAME"):
        net = x
        for b, (n, w) in enumerate(zip(VGG_REPEATS[scope], widths, strict=True), 1):
            net = slim.repeat(net, n, slim.conv2d, w, [3, 3], scope=f"conv{b}")
            net = slim.max_pool2d(net, [2, 2], scope=f"pool{b}")
        net = slim.conv2d(net, fc, [7, 7], padding="VALID", scope="fc6")
        net = slim.conv2d(net, fc, [1, 1], scope="fc7")
        net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="fc8")
        return tf.squeeze(net, [1, 2])


# --- nets/inception_v3.py (inception_v3_arg_scope = inception_utils.inception_arg_scope) ------------------
# Branch layouts of the Mixed blocks: per branch, (depth, kernel, scope) convolutions; "pool" an average
# pool 3x3 SAME, "max" a 3x3 stride-2 VALID max pool, a tuple of two convolutions a concatenated pair;
# stride-2 convolutions are VALID, as in the nets.

V3_A = lambda pool: [[(64, 1, "Conv2d_0a_1x1")], [(48, 1, "Conv2d_0a_1x1"), (64, 5, "Conv2d_0b_5x5")],  # noqa: E731
                     [(64, 1, "Conv2d_0a_1x1"), (96, 3, "Conv2d_0b_3x3"), (96, 3, "Conv2d_0c_3x3")],
                     ["pool", (pool, 1, "Conv2d_0b_1x1")]]  # fmt: skip
V3_C = lambda n: [[(192, 1, "Conv2d_0a_1x1")],  # noqa: E731
                  [(n, 1, "Conv2d_0a_1x1"), (n, [1, 7], "Conv2d_0b_1x7"), (192, [7, 1], "Conv2d_0c_7x1")],
                  [(n, 1, "Conv2d_0a_1x1"), (n, [7, 1], "Conv2d_0b_7x1"), (n, [1, 7], "Conv2d_0c_1x7"),
                   (n, [7, 1], "Conv2d_0d_7x1"), (192, [1, 7], "Conv2d_0e_1x7")],
                  ["pool", (192, 1, "Conv2d_0b_1x1")]]  # fmt: skip
V3_E = lambda b1: [[(320, 1, "Conv2d_0a_1x1")],  # noqa: E731
                   [(384, 1, "Conv2d_0a_1x1"), ((384, [1, 3], "Conv2d_0b_1x3"), (384, [3, 1], b1))],
                   [(448, 1, "Conv2d_0a_1x1"), (384, 3, "Conv2d_0b_3x3"),
                    ((384, [1, 3], "Conv2d_0c_1x3"), (384, [3, 1], "Conv2d_0d_3x1"))],
                   ["pool", (192, 1, "Conv2d_0b_1x1")]]  # fmt: skip
V3_MIXED = {
    "Mixed_5b": V3_A(32),
    # the nets' own spelling in Mixed_5c: "Conv2d_0b_1x1" then "Conv_1_0c_5x5"
    "Mixed_5c": [[(64, 1, "Conv2d_0a_1x1")], [(48, 1, "Conv2d_0b_1x1"), (64, 5, "Conv_1_0c_5x5")],
                 V3_A(64)[2], ["pool", (64, 1, "Conv2d_0b_1x1")]],
    "Mixed_5d": V3_A(64),
    "Mixed_6a": [[(384, 3, "Conv2d_1a_1x1", 2)], [(64, 1, "Conv2d_0a_1x1"), (96, 3, "Conv2d_0b_3x3"),
                                                   (96, 3, "Conv2d_1a_1x1", 2)], ["max"]],
    "Mixed_6b": V3_C(128), "Mixed_6c": V3_C(160), "Mixed_6d": V3_C(160), "Mixed_6e": V3_C(192),
    "Mixed_7a": [[(192, 1, "Conv2d_0a_1x1"), (320, 3, "Conv2d_1a_3x3", 2)],
                 [(192, 1, "Conv2d_0a_1x1"), (192, [1, 7], "Conv2d_0b_1x7"), (192, [7, 1], "Conv2d_0c_7x1"),
                  (192, 3, "Conv2d_1a_3x3", 2)], ["max"]],
    "Mixed_7b": V3_E("Conv2d_0b_3x1"), "Mixed_7c": V3_E("Conv2d_0c_3x1"),
}  # fmt: skip


def _branches(net, branches, d, pool_scope="AvgPool_0a_3x3", max_scope="MaxPool_1a_3x3"):
    """One Inception block from a branch table (see V3_MIXED), under the current variable scope."""

    def conv(x, spec):
        depth, k, scope, *stride = spec
        s = stride[0] if stride else 1
        return slim.conv2d(x, d(depth), k, stride=s, padding="VALID" if s > 1 else "SAME", scope=scope)

    outs = []
    for i, branch in enumerate(branches):
        with tf.variable_scope(f"Branch_{i}"):
            x = net
            for layer in branch:
                if layer == "pool":
                    x = slim.avg_pool2d(x, [3, 3], stride=1, padding="SAME", scope=pool_scope)
                elif layer == "max":
                    x = slim.max_pool2d(x, [3, 3], stride=2, padding="VALID", scope=max_scope)
                elif isinstance(layer[0], tuple):
                    x = tf.concat(axis=3, values=[conv(x, layer[0]), conv(x, layer[1])])
                else:
                    x = conv(x, layer)
            outs.append(x)
    return tf.concat(axis=3, values=outs)


def _inception_arg_scope(scale: bool = False):
    bn = {"decay": 0.9997, "epsilon": 0.001, "scale": scale, "is_training": False}
    return slim.arg_scope([slim.conv2d], activation_fn=tf.nn.relu, normalizer_fn=slim.batch_norm,
                          normalizer_params=bn)  # fmt: skip


def inception_v3(x, num_classes: int, mult: float, min_depth: int = 16):
    d = lambda n: max(int(n * mult), min_depth)  # noqa: E731  # the nets' depth()
    with _inception_arg_scope(), tf.variable_scope("InceptionV3"):
        with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1, padding="VALID"):
            net = slim.conv2d(x, d(32), [3, 3], stride=2, scope="Conv2d_1a_3x3")
            net = slim.conv2d(net, d(32), [3, 3], scope="Conv2d_2a_3x3")
            net = slim.conv2d(net, d(64), [3, 3], padding="SAME", scope="Conv2d_2b_3x3")
            net = slim.max_pool2d(net, [3, 3], stride=2, scope="MaxPool_3a_3x3")
            net = slim.conv2d(net, d(80), [1, 1], scope="Conv2d_3b_1x1")
            net = slim.conv2d(net, d(192), [3, 3], scope="Conv2d_4a_3x3")
            net = slim.max_pool2d(net, [3, 3], stride=2, scope="MaxPool_5a_3x3")
        for name, branches in V3_MIXED.items():
            with tf.variable_scope(name):
                net = _branches(net, branches, d)
            if name == "Mixed_6e":
                aux_in = net
        with tf.variable_scope("AuxLogits"), slim.arg_scope([slim.conv2d], stride=1, padding="SAME"):
            aux = slim.avg_pool2d(aux_in, [5, 5], stride=3, padding="VALID", scope="AvgPool_1a_5x5")
            aux = slim.conv2d(aux, d(128), [1, 1], scope="Conv2d_1b_1x1")
            k = [min(aux.get_shape().as_list()[1], 5), min(aux.get_shape().as_list()[2], 5)]
            aux = slim.conv2d(aux, d(768), k, padding="VALID", scope="Conv2d_2a_{}x{}".format(*k))
            slim.conv2d(aux, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="Conv2d_2b_1x1")
        with tf.variable_scope("Logits"):
            shape = net.get_shape().as_list()
            k = [min(shape[1], 8), min(shape[2], 8)]
            net = slim.avg_pool2d(net, k, padding="VALID", scope="AvgPool_1a_{}x{}".format(*k))
            logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="Conv2d_1c_1x1")
            return tf.squeeze(logits, [1, 2])


# --- nets/inception_v4.py (inception_utils.inception_arg_scope: BN without gamma, epsilon 0.001) ----------

V4_A = [[(96, 1, "Conv2d_0a_1x1")], [(64, 1, "Conv2d_0a_1x1"), (96, 3, "Conv2d_0b_3x3")],
        [(64, 1, "Conv2d_0a_1x1"), (96, 3, "Conv2d_0b_3x3"), (96, 3, "Conv2d_0c_3x3")],
        ["pool", (96, 1, "Conv2d_0b_1x1")]]  # fmt: skip
V4_RA = [[(384, 3, "Conv2d_1a_3x3", 2)], [(192, 1, "Conv2d_0a_1x1"), (224, 3, "Conv2d_0b_3x3"),
                                          (256, 3, "Conv2d_1a_3x3", 2)], ["max"]]  # fmt: skip
V4_B = [[(384, 1, "Conv2d_0a_1x1")],
        [(192, 1, "Conv2d_0a_1x1"), (224, [1, 7], "Conv2d_0b_1x7"), (256, [7, 1], "Conv2d_0c_7x1")],
        [(192, 1, "Conv2d_0a_1x1"), (192, [7, 1], "Conv2d_0b_7x1"), (224, [1, 7], "Conv2d_0c_1x7"),
         (224, [7, 1], "Conv2d_0d_7x1"), (256, [1, 7], "Conv2d_0e_1x7")],
        ["pool", (128, 1, "Conv2d_0b_1x1")]]  # fmt: skip
V4_RB = [[(192, 1, "Conv2d_0a_1x1"), (192, 3, "Conv2d_1a_3x3", 2)],
         [(256, 1, "Conv2d_0a_1x1"), (256, [1, 7], "Conv2d_0b_1x7"), (320, [7, 1], "Conv2d_0c_7x1"),
          (320, 3, "Conv2d_1a_3x3", 2)], ["max"]]  # fmt: skip
V4_C = [[(256, 1, "Conv2d_0a_1x1")],
        [(384, 1, "Conv2d_0a_1x1"), ((256, [1, 3], "Conv2d_0b_1x3"), (256, [3, 1], "Conv2d_0c_3x1"))],
        [(384, 1, "Conv2d_0a_1x1"), (448, [3, 1], "Conv2d_0b_3x1"), (512, [1, 3], "Conv2d_0c_1x3"),
         ((256, [1, 3], "Conv2d_0d_1x3"), (256, [3, 1], "Conv2d_0e_3x1"))],
        ["pool", (256, 1, "Conv2d_0b_1x1")]]  # fmt: skip


def inception_v4(x, num_classes: int, mult: float, min_depth: int = 8):
    """The nets have no depth multiplier: every width here is max(int(width * mult), min_depth)."""
    d = lambda n: max(int(n * mult), min_depth)  # noqa: E731
    with _inception_arg_scope(), tf.variable_scope("InceptionV4"), \
            slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1, padding="SAME"):  # fmt: skip
        net = slim.conv2d(x, d(32), [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        net = slim.conv2d(net, d(32), [3, 3], padding="VALID", scope="Conv2d_2a_3x3")
        net = slim.conv2d(net, d(64), [3, 3], scope="Conv2d_2b_3x3")
        with tf.variable_scope("Mixed_3a"):
            with tf.variable_scope("Branch_0"):
                b0 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope="MaxPool_0a_3x3")
            with tf.variable_scope("Branch_1"):
                b1 = slim.conv2d(net, d(96), [3, 3], stride=2, padding="VALID", scope="Conv2d_0a_3x3")
            net = tf.concat(axis=3, values=[b0, b1])
        with tf.variable_scope("Mixed_4a"):
            with tf.variable_scope("Branch_0"):
                b0 = slim.conv2d(net, d(64), [1, 1], scope="Conv2d_0a_1x1")
                b0 = slim.conv2d(b0, d(96), [3, 3], padding="VALID", scope="Conv2d_1a_3x3")
            with tf.variable_scope("Branch_1"):
                b1 = slim.conv2d(net, d(64), [1, 1], scope="Conv2d_0a_1x1")
                b1 = slim.conv2d(b1, d(64), [1, 7], scope="Conv2d_0b_1x7")
                b1 = slim.conv2d(b1, d(64), [7, 1], scope="Conv2d_0c_7x1")
                b1 = slim.conv2d(b1, d(96), [3, 3], padding="VALID", scope="Conv2d_1a_3x3")
            net = tf.concat(axis=3, values=[b0, b1])
        with tf.variable_scope("Mixed_5a"):
            with tf.variable_scope("Branch_0"):
                b0 = slim.conv2d(net, d(192), [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
            with tf.variable_scope("Branch_1"):
                b1 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope="MaxPool_1a_3x3")
            net = tf.concat(axis=3, values=[b0, b1])
        blocks = [(f"Mixed_5{c}", V4_A) for c in "bcde"] + [("Mixed_6a", V4_RA)] + \
            [(f"Mixed_6{c}", V4_B) for c in "bcdefgh"] + [("Mixed_7a", V4_RB)] + [(f"Mixed_7{c}", V4_C) for c in "bcd"]  # fmt: skip
        for name, branches in blocks:
            with tf.variable_scope(name):
                net = _branches(net, branches, d)
            if name == "Mixed_6h":
                aux_in = net
        with tf.variable_scope("AuxLogits"):
            aux = slim.avg_pool2d(aux_in, [5, 5], stride=3, padding="VALID", scope="AvgPool_1a_5x5")
            aux = slim.conv2d(aux, d(128), [1, 1], scope="Conv2d_1b_1x1")
            aux = slim.conv2d(aux, d(768), aux.get_shape()[1:3], padding="VALID", scope="Conv2d_2a")
            slim.fully_connected(slim.flatten(aux), num_classes, activation_fn=None, scope="Aux_logits")
        with tf.variable_scope("Logits"):
            net = slim.avg_pool2d(net, net.get_shape()[1:3], padding="VALID", scope="AvgPool_1a")
            net = slim.flatten(net, scope="PreLogitsFlatten")
            return slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")


# --- nets/inception_resnet_v2.py (inception_resnet_v2_arg_scope: BN without gamma, epsilon 0.001) ---------


def _residual(net, towers, scale, activation_fn, d):
    """block35/block17/block8: towers of (depth, kernel, scope), concatenated, a 1x1 up-projection with
    biases back to the input's width, scaled and added."""
    outs = []
    for i, tower in enumerate(towers):
        with tf.variable_scope(f"Branch_{i}"):
            x = net
            for depth, k, scope in tower:
                x = slim.conv2d(x, d(depth), k, scope=scope)
            outs.append(x)
    up = slim.conv2d(tf.concat(axis=3, values=outs), net.get_shape()[3], 1, normalizer_fn=None, activation_fn=None,
                     scope="Conv2d_1x1")  # fmt: skip
    net += scale * up
    return activation_fn(net) if activation_fn else net


def inception_resnet_v2(x, num_classes: int, mult: float, min_depth: int = 8):
    """The nets have no depth multiplier: every width here is max(int(width * mult), min_depth)."""
    d = lambda n: max(int(n * mult), min_depth)  # noqa: E731

    # named as the nets' functions: slim.repeat names the scopes after them (Repeat/block35_1, ...)
    def block35(net, scale=1.0, activation_fn=tf.nn.relu, scope=None):
        with tf.variable_scope(scope, "Block35"):
            return _residual(net, [[(32, 1, "Conv2d_1x1")], [(32, 1, "Conv2d_0a_1x1"), (32, 3, "Conv2d_0b_3x3")],
                                   [(32, 1, "Conv2d_0a_1x1"), (48, 3, "Conv2d_0b_3x3"), (64, 3, "Conv2d_0c_3x3")]],
                             scale, activation_fn, d)  # fmt: skip

    def block17(net, scale=1.0, activation_fn=tf.nn.relu, scope=None):
        with tf.variable_scope(scope, "Block17"):
            return _residual(net, [[(192, 1, "Conv2d_1x1")], [(128, 1, "Conv2d_0a_1x1"), (160, [1, 7], "Conv2d_0b_1x7"),
                                                              (192, [7, 1], "Conv2d_0c_7x1")]], scale, activation_fn, d)  # fmt: skip

    def block8(net, scale=1.0, activation_fn=tf.nn.relu, scope=None):
        with tf.variable_scope(scope, "Block8"):
            return _residual(net, [[(192, 1, "Conv2d_1x1")], [(192, 1, "Conv2d_0a_1x1"), (224, [1, 3], "Conv2d_0b_1x3"),
                                                              (256, [3, 1], "Conv2d_0c_3x1")]], scale, activation_fn, d)  # fmt: skip

    with _inception_arg_scope(), tf.variable_scope("InceptionResnetV2"), \
            slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1, padding="SAME"):  # fmt: skip
        net = slim.conv2d(x, d(32), 3, stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        net = slim.conv2d(net, d(32), 3, padding="VALID", scope="Conv2d_2a_3x3")
        net = slim.conv2d(net, d(64), 3, scope="Conv2d_2b_3x3")
        net = slim.max_pool2d(net, 3, stride=2, padding="VALID", scope="MaxPool_3a_3x3")
        net = slim.conv2d(net, d(80), 1, padding="VALID", scope="Conv2d_3b_1x1")
        net = slim.conv2d(net, d(192), 3, padding="VALID", scope="Conv2d_4a_3x3")
        net = slim.max_pool2d(net, 3, stride=2, padding="VALID", scope="MaxPool_5a_3x3")
        with tf.variable_scope("Mixed_5b"):
            b = [[(96, 1, "Conv2d_1x1")], [(48, 1, "Conv2d_0a_1x1"), (64, 5, "Conv2d_0b_5x5")],
                 [(64, 1, "Conv2d_0a_1x1"), (96, 3, "Conv2d_0b_3x3"), (96, 3, "Conv2d_0c_3x3")],
                 ["pool", (64, 1, "Conv2d_0b_1x1")]]  # fmt: skip
            net = _branches(net, b, d)
        net = slim.repeat(net, 10, block35, scale=0.17)
        with tf.variable_scope("Mixed_6a"):
            net = _branches(net, [[(384, 3, "Conv2d_1a_3x3", 2)], [(256, 1, "Conv2d_0a_1x1"), (256, 3, "Conv2d_0b_3x3"),
                                                                 (384, 3, "Conv2d_1a_3x3", 2)], ["max"]], d)  # fmt: skip
        net = slim.repeat(net, 20, block17, scale=0.10)
        aux_in = net
        with tf.variable_scope("Mixed_7a"):
            net = _branches(net, [[(256, 1, "Conv2d_0a_1x1"), (384, 3, "Conv2d_1a_3x3", 2)],
                                  [(256, 1, "Conv2d_0a_1x1"), (288, 3, "Conv2d_1a_3x3", 2)],
                                  [(256, 1, "Conv2d_0a_1x1"), (288, 3, "Conv2d_0b_3x3"), (320, 3, "Conv2d_1a_3x3", 2)],
                                  ["max"]], d)  # fmt: skip
        net = slim.repeat(net, 9, block8, scale=0.20)
        net = block8(net, activation_fn=None)
        net = slim.conv2d(net, d(1536), 1, scope="Conv2d_7b_1x1")
        with tf.variable_scope("AuxLogits"):
            aux = slim.avg_pool2d(aux_in, 5, stride=3, padding="VALID", scope="Conv2d_1a_3x3")
            aux = slim.conv2d(aux, d(128), 1, scope="Conv2d_1b_1x1")
            aux = slim.conv2d(aux, d(768), aux.get_shape()[1:3], padding="VALID", scope="Conv2d_2a_5x5")
            slim.fully_connected(slim.flatten(aux), num_classes, activation_fn=None, scope="Logits")
        with tf.variable_scope("Logits"):
            net = slim.avg_pool2d(net, net.get_shape()[1:3], padding="VALID", scope="AvgPool_1a_8x8")
            return slim.fully_connected(slim.flatten(net), num_classes, activation_fn=None, scope="Logits")


# --- nets/resnet_v2.py + resnet_utils.py (resnet_arg_scope: BN with gamma, epsilon 1e-5) ------------------


def _bottleneck_v2(x, depth, depth_bottleneck, stride):
    with tf.variable_scope("bottleneck_v2"):
        depth_in = x.get_shape()[-1]
        preact = slim.batch_norm(x, activation_fn=tf.nn.relu, scope="preact")
        if depth == depth_in:
            shortcut = x if stride == 1 else slim.max_pool2d(x, [1, 1], stride=stride, scope="shortcut")
        else:
            shortcut = slim.conv2d(preact, depth, [1, 1], stride=stride, normalizer_fn=None, activation_fn=None,
                                   scope="shortcut")  # fmt: skip
        r = slim.conv2d(preact, depth_bottleneck, [1, 1], stride=1, scope="conv1")
        r = _conv2d_same(r, depth_bottleneck, 3, stride, scope="conv2")
        r = slim.conv2d(r, depth, [1, 1], stride=1, normalizer_fn=None, activation_fn=None, scope="conv3")
        return shortcut + r


def resnet_v2(x, num_classes: int, base_depths, units, scope: str):
    bn = {"decay": 0.997, "epsilon": 1e-5, "scale": True, "is_training": False}
    with slim.arg_scope([slim.conv2d], activation_fn=tf.nn.relu, normalizer_fn=slim.batch_norm, normalizer_params=bn), \
            slim.arg_scope([slim.batch_norm], **bn), slim.arg_scope([slim.max_pool2d], padding="SAME"), \
            tf.variable_scope(scope):  # fmt: skip
        with slim.arg_scope([slim.conv2d], activation_fn=None, normalizer_fn=None):  # conv1: no BN, no ReLU
            net = _conv2d_same(x, 64, 7, 2, scope="conv1")
        net = slim.max_pool2d(net, [3, 3], stride=2, scope="pool1")
        strides = [2, 2, 2, 1]  # resnet_v2_block: the stride sits on the LAST unit of blocks 1-3
        for b, (base, n, stride) in enumerate(zip(base_depths, units, strides, strict=True)):
            with tf.variable_scope(f"block{b + 1}"):
                for i in range(n):
                    with tf.variable_scope(f"unit_{i + 1}"):
                        net = _bottleneck_v2(net, base * 4, base, stride if i == n - 1 else 1)
        net = slim.batch_norm(net, activation_fn=tf.nn.relu, scope="postnorm")
        net = tf.reduce_mean(net, [1, 2], keepdims=True, name="pool5")
        logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="logits")
        return tf.squeeze(logits, [1, 2])


# --- nets/nasnet/nasnet.py, pnasnet.py + nasnet_utils.py (nasnet_large_arg_scope: BN with gamma, eps 0.001) --
# A cell is (operations, used_hiddenstates, hiddenstate_indices) as nasnet_utils / pnasnet define them.
# Drop path has no variables and is off at inference (the nets set drop_path_keep_prob = 1.0 when not
# training), dropout before the logits likewise: neither is built here.

NASNET_NORMAL = (["separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2", "avg_pool_3x3", "none",
                  "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2", "none"],
                 [1, 0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 0, 1, 1, 1, 0, 0])  # fmt: skip
NASNET_REDUCTION = (["separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2", "avg_pool_3x3",
                     "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2", "max_pool_3x3"],
                    [1, 1, 1, 0, 0, 0, 0], [0, 1, 0, 1, 0, 1, 3, 2, 2, 0])  # fmt: skip
PNASNET_CELL = (["separable_5x5_2", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3", "separable_5x5_2",
                 "separable_3x3_2", "separable_3x3_2", "max_pool_3x3", "separable_3x3_2", "none"],
                [1, 1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 4, 0, 1, 0])  # fmt: skip


def _nasnet_arg_scope():
    bn = {"decay": 0.9997, "epsilon": 0.001, "scale": True, "fused": True, "is_training": False}
    fc = slim.arg_scope([slim.fully_connected], activation_fn=None, scope="FC")
    conv = slim.arg_scope([slim.conv2d, slim.separable_conv2d], activation_fn=None, biases_initializer=None)
    return fc, conv, slim.arg_scope([slim.batch_norm], **bn)


def _calc_reduction_layers(num_cells, num_reduction_layers=2):
    return [int(float(p) / (num_reduction_layers + 1) * num_cells) for p in range(1, num_reduction_layers + 1)]


def _factorized_reduction(net, output_filters, stride):
    assert output_filters % 2 == 0
    if stride == 1:
        return slim.batch_norm(slim.conv2d(net, output_filters, 1, scope="path_conv"), scope="path_bn")
    path1 = tf.nn.avg_pool(net, [1, 1, 1, 1], [1, stride, stride, 1], "VALID")
    path1 = slim.conv2d(path1, int(output_filters / 2), 1, scope="path1_conv")
    # pad 0's on the right and bottom, then shift the window onto them
    path2 = tf.pad(net, [[0, 0], [0, 1], [0, 1], [0, 0]])[:, 1:, 1:, :]
    path2 = tf.nn.avg_pool(path2, [1, 1, 1, 1], [1, stride, stride, 1], "VALID")
    path2 = slim.conv2d(path2, int(output_filters / 2), 1, scope="path2_conv")
    return slim.batch_norm(tf.concat(values=[path1, path2], axis=3), scope="final_path_bn")


def _nas_operation(net, operation, stride, filters):
    """NasNetABaseCell._apply_conv_operation."""
    if "separable" in operation:  # _stacked_separable_conv
        k, layers = int(operation.split("x")[0][-1]), int(operation.split("_")[-1])
        for layer in range(1, layers + 1):
            net = tf.nn.relu(net)
            net = slim.separable_conv2d(net, filters, k, depth_multiplier=1, stride=stride,
                                        scope=f"separable_{k}x{k}_{layer}")  # fmt: skip
            net = slim.batch_norm(net, scope=f"bn_sep_{k}x{k}_{layer}")
            stride = 1
    elif operation == "none":
        if stride > 1 or int(net.shape[3]) != filters:
            net = slim.conv2d(tf.nn.relu(net), filters, 1, stride=stride, scope="1x1")
            net = slim.batch_norm(net, scope="bn_1")
    else:  # _pooling: SAME
        pool = slim.avg_pool2d if operation.startswith("avg") else slim.max_pool2d
        input_filters = int(net.shape[3])
        net = pool(net, int(operation.split("x")[-1]), stride=stride, padding="SAME")
        if input_filters != filters:
            net = slim.batch_norm(slim.conv2d(net, filters, 1, stride=1, scope="1x1"), scope="bn_1")
    return net


def _nas_cell(net, prev, cell, filters, stride, scope):
    """NasNetABaseCell.__call__ (_cell_base, _reduce_prev_layer, _combine_unused_states)."""
    operations, used, indices = cell
    with tf.variable_scope(scope):
        if prev is None:
            prev = net
        elif int(prev.shape[2]) != int(net.shape[2]):
            prev = _factorized_reduction(tf.nn.relu(prev), filters, 2)
        elif int(prev.shape[3]) != filters:
            prev = slim.batch_norm(slim.conv2d(tf.nn.relu(prev), filters, 1, scope="prev_1x1"), scope="prev_bn")
        net = slim.batch_norm(slim.conv2d(tf.nn.relu(net), filters, 1, scope="1x1"), scope="beginning_bn")
        states = [net, prev]
        for i in range(5):
            with tf.variable_scope(f"comb_iter_{i}"):
                h = []
                for side, idx, op in (("left", indices[2 * i], operations[2 * i]),
                                      ("right", indices[2 * i + 1], operations[2 * i + 1])):  # fmt: skip
                    with tf.variable_scope(side):
                        h.append(_nas_operation(states[idx], op, stride if idx < 2 else 1, filters))
                states.append(h[0] + h[1])
        with tf.variable_scope("cell_output"):
            # (never the case in these cells: _reduce_prev_layer already matched the previous layer)
            size, depth = int(states[-1].shape[2]), int(states[-1].shape[3])
            for idx, u in enumerate(used):
                if not u and (int(states[idx].shape[2]) != size or int(states[idx].shape[3]) != depth):
                    with tf.variable_scope(f"reduction_{idx}"):
                        states[idx] = _factorized_reduction(states[idx], depth,
                                                            2 if int(states[idx].shape[2]) != size else 1)  # fmt: skip
            return tf.concat(values=[s for s, u in zip(states, used, strict=True) if not u], axis=3)


def _aux_head(net, num_classes, scope):
    with tf.variable_scope(scope), tf.variable_scope("aux_logits"):
        aux = slim.avg_pool2d(net, [5, 5], stride=3, padding="VALID")
        aux = tf.nn.relu(slim.batch_norm(slim.conv2d(aux, 128, [1, 1], scope="proj"), scope="aux_bn0"))
        aux = slim.conv2d(aux, 768, aux.shape[1:3], padding="VALID")
        aux = tf.nn.relu(slim.batch_norm(aux, scope="aux_bn1"))
        slim.fully_connected(slim.flatten(aux), num_classes)


def _nas_stem(x, cell, filters, stem_multiplier):
    """nasnet._imagenet_stem: conv0 (VALID), then two stride-2 cells at 1/4 and 1/2 of the filters."""
    net = slim.conv2d(x, int(32 * stem_multiplier), [3, 3], stride=2, scope="conv0", padding="VALID")
    net = slim.batch_norm(net, scope="conv0_bn")
    outputs, scaling = [None, net], 1.0 / 4
    for i in range(2):
        net = _nas_cell(net, outputs[-2], cell, int(filters * scaling), 2, f"cell_stem_{i}")
        outputs.append(net)
        scaling *= 2
    return net, outputs


def _nas_logits(net, num_classes):
    with tf.variable_scope("final_layer"):
        return slim.fully_connected(tf.reduce_mean(tf.nn.relu(net), [1, 2]), num_classes)


def nasnet_large(x, num_classes: int, filters: int = 168, stem_multiplier: float = 3.0, num_cells: int = 18,
                 aux: bool = False):  # fmt: skip
    """build_nasnet_large (skip_reduction_layer_input=1); ``aux``: the training-time head, as is_training builds."""
    fc, conv, bn = _nasnet_arg_scope()
    with fc, conv, bn:
        reduction = _calc_reduction_layers(num_cells)
        net, outputs = _nas_stem(x, NASNET_REDUCTION, filters, stem_multiplier)
        scaling = 1.0
        for cell_num in range(num_cells):
            prev = outputs[-2]
            if cell_num in reduction:
                scaling *= 2
                net = _nas_cell(net, outputs[-2], NASNET_REDUCTION, int(filters * scaling), 2,
                                f"reduction_cell_{reduction.index(cell_num)}")  # fmt: skip
                outputs.append(net)
            net = _nas_cell(net, prev, NASNET_NORMAL, int(filters * scaling), 1, f"cell_{cell_num}")
            if aux and cell_num == reduction[1] - 1:
                _aux_head(tf.nn.relu(net), num_classes, f"aux_{cell_num}")
            outputs.append(net)
        return _nas_logits(net, num_classes)


def pnasnet_large(x, num_classes: int, filters: int = 216, stem_multiplier: float = 3.0, num_cells: int = 12,
                  aux: bool = False):  # fmt: skip
    """build_pnasnet_large: one cell type, stride 2 at the reduction indices, the stem made of it too."""
    fc, conv, bn = _nasnet_arg_scope()
    with fc, conv, bn:
        reduction = _calc_reduction_layers(num_cells)
        net, outputs = _nas_stem(x, PNASNET_CELL, filters, stem_multiplier)
        scaling = 1.0
        for cell_num in range(num_cells):
            stride = 2 if cell_num in reduction else 1
            scaling *= 2 if stride == 2 else 1
            net = _nas_cell(net, outputs[-2], PNASNET_CELL, int(filters * scaling), stride, f"cell_{cell_num}")
            outputs.append(net)
            if aux and cell_num == reduction[1] - 1:
                _aux_head(tf.nn.relu(net), num_classes, f"aux_{cell_num}")
        return _nas_logits(net, num_classes)


# --- fixtures -------------------------------------------------------------------------------------------

FIXTURES = {
    # name: (builder, input size, classes, what is reduced, checkpoint formats)
    "inception_v1": (lambda x: inception_v1(x, 1001, 0.125), 224, 1001, "width x0.125", ("v2",)),
    "resnet_v1_50": (lambda x: resnet_v1(x, 1000, (4, 8, 16, 32), (2, 2, 2, 1), "resnet_v1_50"), 112, 1000,
                     "base depths 4-8-16-32 (of 64-128-256-512), units 2-2-2-1 (of 3-4-6-3)", ("v2",)),
    "mobilenet_v1": (lambda x: mobilenet_v1(x, 1001, 0.0625), 200, 1001, "width x0.0625", ("v2", "v1")),
    "mobilenet_v2": (lambda x: mobilenet_v2(x, 10, 0.25), 160, 10, "width x0.25, 10 classes", ("v2",)),
    "vgg_16": (lambda x: vgg(x, 1000, "vgg_16", (4, 8, 16, 32, 32), 32), 224, 1000,
               "widths 4-8-16-32-32 (of 64-128-256-512-512), fc 32 (of 4096)", ("v2",)),
    "inception_v3": (lambda x: inception_v3(x, 1001, 0.0625), 139, 1001,
                     "depth_multiplier 0.0625 (the nets' own argument, min_depth 16)", ("v2",)),
    "resnet_v2_50": (lambda x: resnet_v2(x, 1001, (4, 8, 16, 32), (2, 2, 2, 1), "resnet_v2_50"), 112, 1001,
                     "base depths 4-8-16-32 (of 64-128-256-512), units 2-2-2-1 (of 3-4-6-3)", ("v2",)),
    "inception_v4": (lambda x: inception_v4(x, 1001, 0.0625), 139, 1001, "widths x0.0625 (at least 8)", ("v2",)),
    "inception_resnet_v2": (lambda x: inception_resnet_v2(x, 1001, 0.0625), 139, 1001,
                            "widths x0.0625 (at least 8)", ("v2",)),
    # all 18 (12) cells and both reductions kept; 109 px: sizes 54-27-14-7-4 after conv0, so the stride-2
    # cells meet both even sizes (TF pads 0 before / 1 after) and odd ones; 10 classes keep them 1 MB each
    "nasnet_large": (lambda x: nasnet_large(x, 10, filters=8, stem_multiplier=0.25), 109, 10,
                     "num_conv_filters 8 (of 168), stem_multiplier 0.25 (of 3.0), 10 classes", ("v2",)),
    "pnasnet_large": (lambda x: pnasnet_large(x, 10, filters=8, stem_multiplier=0.25), 109, 10,
                      "num_conv_filters 8 (of 216), stem_multiplier 0.25 (of 3.0), 10 classes", ("v2",)),
}  # fmt: skip


def randomize(sess, rng) -> None:
    """Random weights with sane scales (He for kernels) and random BatchNorm statistics, so parity is not
    trivially met by zero means and unit variances."""
    import numpy as np

    values = {}
    for v in tf.global_variables():
        shape = v.get_shape().as_list()
        name = v.op.name
        if name.endswith(("weights", "depthwise_weights")):
            fan_in = int(np.prod(shape[:-1])) if not name.endswith("depthwise_weights") else shape[0] * shape[1]
            # the logits layer a third of He's scale: logits of a few units, so 1e-4 is a relative 1e-5 or less
            logits = name.endswith(("logits/weights", "Conv2d_0c_1x1/weights", "Conv2d_1c_1x1/weights", "fc8/weights",
                                     "Logits/Logits/weights", "final_layer/FC/weights"))
            val = rng.normal(0, (2.0 / fan_in) ** 0.5 / (3 if logits else 1), shape)
        elif name.endswith(("moving_variance", "gamma")):
            val = rng.uniform(0.5, 1.5, shape)
        else:  # beta, biases, moving_mean
            val = rng.normal(0, 0.1, shape)
        values[v] = val.astype(np.float32)
    # one run for all (Variable.load per variable takes minutes on the NAS nets' 1500 variables)
    feeds = {v: tf.placeholder(tf.float32, v.get_shape()) for v in values}
    sess.run([v.assign(p) for v, p in feeds.items()], {feeds[v]: val for v, val in values.items()})


# the NAS nets are 20 cells deep without residual paths: with random BatchNorm statistics their activations
# grow about 1.7x per cell (logits near 1e4, and float32 then cannot hold 1e-4), so their statistics are
# set from the fixture's own input, layer after layer, as training would have left them (then perturbed)
CALIBRATE = {"nasnet_large", "pnasnet_large"}


def calibrate_batch_norm(sess, x, image, rng) -> None:
    import numpy as np

    graph = tf.get_default_graph()
    variables = {v.op.name: v for v in tf.global_variables()}
    for op in graph.get_operations():  # creation order: every BatchNorm's input is set before it is read
        if not op.type.startswith("FusedBatchNorm"):
            continue
        scope = op.name.rsplit("/", 1)[0]
        act = sess.run(op.inputs[0], {x: image})  # (N, H, W, C)
        mean, var = act.mean((0, 1, 2)), act.var((0, 1, 2))
        variables[f"{scope}/moving_mean"].load((mean + rng.normal(0, 0.1, mean.shape) * var**0.5).astype(np.float32), sess)
        variables[f"{scope}/moving_variance"].load((var * rng.uniform(0.8, 1.25, var.shape)).astype(np.float32), sess)


def build_fixture(name: str, out: Path) -> dict:
    import numpy as np

    builder, size, classes, reduced, formats = FIXTURES[name]
    tf.reset_default_graph()
    rng = np.random.default_rng(sum(map(ord, name)))  # fixed per network
    x = tf.placeholder(tf.float32, [2, size, size, 3])
    logits = builder(x)
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        randomize(sess, rng)
        # (N, H, W, C), as TF takes it; k/127 for int8 k, so the stored input is small and exact
        q = rng.integers(-127, 128, (2, size, size, 3), dtype=np.int8)
        image = q.astype(np.float32) / 127
        if name in CALIBRATE:
            calibrate_batch_norm(sess, x, image, rng)
        y = sess.run(logits, {x: image})
        for fmt in formats:
            version = tf.train.SaverDef.V2 if fmt == "v2" else tf.train.SaverDef.V1
            saver = tf.train.Saver(write_version=version)
            saver.save(sess, str(d / ("model.ckpt" if fmt == "v2" else "model_v1.ckpt")), write_meta_graph=False,
                       write_state=False)  # fmt: skip
    np.save(d / "input_int8.npy", q)  # image = q / 127
    np.save(d / "logits.npy", y.astype(np.float32))
    info = {"network": name, "input_size": size, "num_classes": classes, "reduced": reduced, "formats": list(formats),
            "tensorflow": tf.__version__, "logits_abs_max": float(np.abs(y).max())}  # fmt: skip
    (d / "fixture.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


# Trainable parameters of the nets at full size with 1000 classes (auxiliary heads included), as profiled from
# TF-Slim's own nets (visipedia/tf_classification, nets/README.md): the builders above at width 1.0 must give
# exactly these, a check that they are the nets layer for layer and not only at the reduced fixture widths.
FULL_SIZE = {
    "inception_v1": (lambda x: inception_v1(x, 1000, 1.0), 224, 6_617_624),
    "inception_v3": (lambda x: inception_v3(x, 1000, 1.0), 299, 27_143_152),
    "inception_v4": (lambda x: inception_v4(x, 1000, 1.0), 299, 46_006_800),
    "inception_resnet_v2": (lambda x: inception_resnet_v2(x, 1000, 1.0), 299, 59_179_952),
    "resnet_v1_50": (lambda x: resnet_v1(x, 1000, (64, 128, 256, 512), (3, 4, 6, 3), "resnet_v1_50"), 224, 25_557_032),
    "resnet_v2_50": (lambda x: resnet_v2(x, 1000, (64, 128, 256, 512), (3, 4, 6, 3), "resnet_v2_50"), 224, 25_568_360),
    "vgg_16": (lambda x: vgg(x, 1000, "vgg_16", (64, 128, 256, 512, 512), 4096), 224, 138_357_544),
    # without the auxiliary head (what inference builds): Keras's NASNetLarge (a port of these nets) reports
    # 88,753,150 trainable parameters (88.9M with the BatchNorm statistics); the PNASNet paper 86.1M
    "nasnet_large": (lambda x: nasnet_large(x, 1000), 331, 88_753_150),
    "pnasnet_large": (lambda x: pnasnet_large(x, 1000), 331, 86.1),
}  # fmt: skip


def check_full_size() -> bool:
    import numpy as np

    ok = True
    for name, (builder, size, published) in FULL_SIZE.items():
        tf.reset_default_graph()
        builder(tf.placeholder(tf.float32, [1, size, size, 3]))
        n = sum(int(np.prod(v.get_shape().as_list())) for v in tf.trainable_variables())
        same = n == published if isinstance(published, int) else round(n / 1e6, 1) == published  # as rounded (M)
        ok &= same
        shown = f"{published:,}" if isinstance(published, int) else f"{published}M"
        print(f"{name}: {n:,} trainable parameters, published {shown}: {'same' if same else 'DIFFERENT'}")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/hub/fixtures/slim")
    ap.add_argument("--check-full-size", action="store_true", help="compare the full-size builders' parameter "
                    "counts with those published for TF-Slim's nets, and build no fixture")  # fmt: skip
    ap.add_argument("names", nargs="*", default=list(FIXTURES))
    args = ap.parse_args()
    if args.check_full_size:
        sys.exit(0 if check_full_size() else 1)
    for name in args.names:
        info = build_fixture(name, Path(args.out))
        size = sum(f.stat().st_size for f in (Path(args.out) / name).iterdir())
        print(f"{name}: {size / 1e6:.2f} MB, |logits| max {info['logits_abs_max']:.2f}")


if __name__ == "__main__":
    main()
