"""A small PyTorch CNN for scikit-learn's 8x8 digits, in SNN-TB's PyTorch
convention (``[input] model_lib = pytorch``, ``filename_ann =
digits_torch``): this script defines ``Model`` and ``input_shape``; its
weights are ``digits_torch.pth`` (a state_dict), trained by
``models/train_digits_torch.py``.

Architecture (as models/digits_cnn.h5): Conv(16, 3x3, pad 1) - ReLU -
AvgPool(2) - Conv(32, 3x3, pad 1) - ReLU - AvgPool(2) - Flatten - Linear(64)
- ReLU - Linear(10). Inputs in [0, 1], shape (1, 8, 8) (channels first).
"""

import torch.nn as nn

input_shape = (1, 8, 8)


class Model(nn.Module):
    input_shape = input_shape

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 2 * 2, 64), nn.ReLU(),
            nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.features(x))
