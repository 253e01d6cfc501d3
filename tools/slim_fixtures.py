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
}  # fmt: skip


def randomize(sess, rng) -> None:
    """Random weights with sane scales (He for kernels) and random BatchNorm statistics, so parity is not
    trivially met by zero means and unit variances."""
    import numpy as np

    for v in tf.global_variables():
        shape = v.get_shape().as_list()
        name = v.op.name
        if name.endswith(("weights", "depthwise_weights")):
            fan_in = int(np.prod(shape[:-1])) if not name.endswith("depthwise_weights") else shape[0] * shape[1]
            # the logits layer a third of He's scale: logits of a few units, so 1e-4 is a relative 1e-5 or less
            logits = name.endswith(("logits/weights", "Conv2d_0c_1x1/weights", "Conv2d_1c_1x1/weights", "fc8/weights"))
            val = rng.normal(0, (2.0 / fan_in) ** 0.5 / (3 if logits else 1), shape)
        elif name.endswith(("moving_variance", "gamma")):
            val = rng.uniform(0.5, 1.5, shape)
        else:  # beta, biases, moving_mean
            val = rng.normal(0, 0.1, shape)
        v.load(val.astype(np.float32), sess)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/hub/fixtures/slim")
    ap.add_argument("names", nargs="*", default=list(FIXTURES))
    args = ap.parse_args()
    for name in args.names:
        info = build_fixture(name, Path(args.out))
        size = sum(f.stat().st_size for f in (Path(args.out) / name).iterdir())
        print(f"{name}: {size / 1e6:.2f} MB, |logits| max {info['logits_abs_max']:.2f}")


if __name__ == "__main__":
    main()
