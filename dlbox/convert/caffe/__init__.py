"""Caffe models without Caffe: prototxt (text format) and caffemodel (binary) readers, layers with Caffe's
arithmetic, and the importer (`dlbox caffe import`).

The solver (`dlbox caffe train`) lives apart, in dlbox/tasks/caffe/, because it trains on the engine and
reads datasets (a task, layer 4), while reading and rebuilding a net is a conversion that the registry's
``caffe`` entry and any task may use without importing a task (layer 3)."""

from dlbox.convert.caffe.importer import import_model, load_net, load_pt  # noqa: F401
from dlbox.convert.caffe.net import CaffeNet  # noqa: F401
