"""A PyTorch CIFAR-10 CNN with a residual block, in SNN-TB's PyTorch
convention (``[input] model_lib = pytorch``, ``filename_ann =
cifar10_torch``): this script defines ``Model`` and ``input_shape``; its
weights are ``cifar10_torch.pth`` (a state_dict), trained by
``models/train_cifar10_torch.py``.

Architecture (inputs in [0, 1], shape (3, 32, 32), channels first)::

    Conv(32, 3x3, pad 1) - BN - ReLU - Conv(32, 3x3, pad 1) - BN - ReLU
    - MaxPool(2)
    - Conv(64, 3x3, pad 1) - BN - ReLU
    - residual block: x + ReLU(BN(Conv(64, 3x3, pad 1)(ReLU(BN(Conv(64,
      3x3, pad 1)(x))))))
    - AvgPool(2)
    - Conv(128, 3x3, pad 1) - BN - ReLU - AvgPool(2)
    - Flatten - Dropout(0.3) - Linear(128) - ReLU - Linear(10)

The residual branch ends in a ReLU before the addition (and both summands
are non-negative): SNN-TB turns every convolution into a layer of IF
neurons, which cannot carry negative values, and turns the addition into a
concatenation followed by a 1x1 convolution that sums the two halves; a
branch that ended in a linear convolution would be clipped at zero in the
spiking network. The output layer is linear (no softmax).
"""

import torch.nn as nn

input_shape = (3, 32, 32)


def conv_bn(cin, cout):
    """3x3 convolution (padding 1, no bias), BatchNorm, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class Residual(nn.Module):
    """``x + ReLU(BN(conv(ReLU(BN(conv(x))))))``."""

    def __init__(self, channels):
        super().__init__()
        self.branch = nn.Sequential(conv_bn(channels, channels),
                                    conv_bn(channels, channels))

    def forward(self, x):
        return x + self.branch(x)


class Model(nn.Module):
    input_shape = input_shape

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 32), conv_bn(32, 32), nn.MaxPool2d(2),
            conv_bn(32, 64), Residual(64), nn.AvgPool2d(2),
            conv_bn(64, 128), nn.AvgPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 4 * 4, 128),
            nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.classifier(self.features(x))
