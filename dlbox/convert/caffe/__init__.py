"""Caffe models without Caffe: prototxt (text format) and caffemodel (binary) readers, layers with Caffe's
arithmetic, and the importer (`dlbox caffe import`). The solver lives in dlbox/tasks/caffe/."""

from dlbox.hub.convert.caffe.importer import import_model, load_net, load_pt  # noqa: F401
from dlbox.hub.convert.caffe.net import CaffeNet  # noqa: F401
