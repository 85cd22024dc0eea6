"""SNN-TB's ``snntoolbox.parsing.model_libs.pytorch_input_lib``, served by
the plugin (``[input] model_lib = pytorch``): SNN-TB's convention, the
plugin's exact ONNX conversion (:mod:`snntb_adaptive.foreign_models`)."""

from snntoolbox.parsing.model_libs.keras_input_lib import (  # noqa: F401
    ModelParser, evaluate)

from snntb_adaptive.foreign_models import load_pytorch as load  # noqa: F401
