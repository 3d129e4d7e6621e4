"""Logistic regression trained by backpropagation, first by hand, then by autograd.

The model squashes a linear score through the logistic function and is fitted to 0/1
labels by minimising the mean squared error:

    z = X @ theta                  X: [N, D] (last column of ones = bias), theta: [D]
    p = sigmoid(z)                 sigmoid(z) = 1 / (1 + exp(-z))
    L = mean((p - y)^2) = (1/N) sum_i (p_i - y_i)^2

Backpropagation is the chain rule applied from the loss back to the parameters:

    dL/dp_i     = (2/N) (p_i - y_i)
    dp_i/dz_i   = sigmoid'(z_i) = p_i (1 - p_i)          <- the factor that is easy to forget
    dL/dz_i     = (2/N) (p_i - y_i) p_i (1 - p_i)
    dL/dtheta   = X^T dL/dz                               (z is linear in theta)

Dropping sigmoid'(z) gives (2/N) X^T (p - y): that is the gradient of the cross-entropy
loss, not of this one, so with the MSE loss it is simply wrong. The script checks the hand
gradient against central finite differences, shows the size of that mistake, trains with
gradient descent, and repeats the training with ganforge.backprop's Tensor autograd: both
give the same gradients and the same weights.

    python examples/logistic_regression_backprop.py
"""

from __future__ import annotations

import numpy as np

from ganforge.backprop import Tensor, optim
from ganforge.backprop import functional as F

LR, STEPS, PRINT_EVERY = 0.5, 2000, 200


def make_data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping 2-d Gaussian blobs, labels 0/1; X gets a column of ones for the bias."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.float64)
    pts = rng.standard_normal((n, 2)) + np.where(y[:, None] == 1, 1.5, -1.0)
    return np.hstack([pts, np.ones((n, 1))]), y  # [N, 3], [N]


def sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))  # never overflows
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def loss(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((sigmoid(X @ theta) - y) ** 2))


def grad(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dtheta by backpropagation (see the module docstring)."""
    p = sigmoid(X @ theta)  # forward pass, [N]
    dz = 2.0 / len(y) * (p - y) * p * (1 - p)  # back through the loss and the sigmoid
    return X.T @ dz  # back through z = X @ theta, [D]


def grad_without_sigmoid_derivative(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The common mistake: the chain rule without sigmoid'(z)."""
    return X.T @ (2.0 / len(y) * (sigmoid(X @ theta) - y))


def finite_differences(theta: np.ndarray, X: np.ndarray, y: np.ndarray,
                       h: float = 1e-6) -> np.ndarray:
    """(L(theta + h e_k) - L(theta - h e_k)) / 2h for every k."""
    out = np.zeros_like(theta)
    for k in range(len(theta)):
        e = np.zeros_like(theta)
        e[k] = h
        out[k] = (loss(theta + e, X, y) - loss(theta - e, X, y)) / (2 * h)
    return out


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main() -> None:
    X, y = make_data()
    theta0 = np.array([0.3, -0.2, 0.1])

    print("1. Check the hand-derived gradient against central finite differences")
    for theta in (theta0, np.array([1.0, 2.0, -0.5])):
        fd = finite_differences(theta, X, y)
        print(f"   theta={theta}: backprop rel. error {rel(grad(theta, X, y), fd):.1e}, "
              f"without sigmoid' {rel(grad_without_sigmoid_derivative(theta, X, y), fd):.1e}")

    print(f"\n2. Gradient descent by hand (lr={LR})")
    theta = theta0.copy()
    for step in range(STEPS + 1):
        if step % PRINT_EVERY == 0:
            acc = np.mean((X @ theta > 0) == (y == 1))
            print(f"   step {step:5d}  loss {loss(theta, X, y):.5f}  accuracy {acc:.3f}")
        if step < STEPS:
            theta -= LR * grad(theta, X, y)
    theta_hand = theta

    print("\n3. The same model with ganforge.backprop autograd")
    t = Tensor(theta0.copy(), requires_grad=True)
    Xt, yt = Tensor(X), Tensor(y)
    opt = optim.SGD([t], lr=LR)
    worst = 0.0
    for step in range(STEPS):
        opt.zero_grad()
        loss_t = F.mse_loss((Xt @ t).sigmoid(), yt)
        loss_t.backward()
        worst = max(worst, rel(t.grad, grad(t.data, X, y)))
        opt.step()
    print(f"   autograd vs hand gradient, worst rel. error over {STEPS} steps: {worst:.1e}")
    print(f"   final theta: hand {theta_hand}, autograd {t.data}")
    print(f"   rel. difference of the trained weights: {rel(t.data, theta_hand):.1e}")


if __name__ == "__main__":
    main()
