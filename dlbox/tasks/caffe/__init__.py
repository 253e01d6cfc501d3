"""Caffe solvers on the dlbox engine (`dlbox caffe train`) and the `dlbox caffe` commands."""
