"""``snntoolbox.parsing.model_libs.onnx_input_lib``, served by the plugin
(``[input] model_lib = onnx``): ``<filename_ann>.onnx`` converted exactly
(:mod:`snntb_adaptive.foreign_models`); no PyTorch needed."""

from snntoolbox.parsing.model_libs.keras_input_lib import (  # noqa: F401
    ModelParser, evaluate)

from snntb_adaptive.foreign_models import load_onnx as load  # noqa: F401
