"""LeNet-5 (LeCun et al. 1998), the integrity test's model, in PyTorch and in Keras 3."""

from __future__ import annotations

from torch import nn


class LeNet5(nn.Module):
    """28x28x1 -> conv5(6) -> pool -> conv5(16) -> pool -> 120 -> 84 -> 10 (ReLU and max-pool, as usual today)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # (N, 6, 14, 14)
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # (N, 16, 5, 5)
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True), nn.Linear(84, num_classes),
        )  # fmt: skip

    def forward(self, x):  # x: (N, 1, 28, 28)
        return self.classifier(self.features(x))


def keras_lenet5(keras, num_classes: int = 10):
    """The same network in Keras (channels-last input (N, 28, 28, 1))."""
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(6, 5, padding="same", activation="relu"), L.MaxPooling2D(2),
            L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(2),
            L.Flatten(), L.Dense(120, activation="relu"), L.Dense(84, activation="relu"), L.Dense(num_classes),
        ]
    )  # fmt: skip
