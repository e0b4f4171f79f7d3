"""PyTorch-tutorial-style scripts, run with funcnn_modules and with real PyTorch.

Each script below is tutorial code written against a library argument called ``torch``; it is
run once with ``torch`` and once with ``funcnn_modules`` in its place, from the same initial
weights (PyTorch's, copied over through NumPy) and the same data, and both runs must print the
same numbers: every loss along the way, the evaluation accuracy, the final weights.
"""

from __future__ import annotations

import numpy as np
import pytest

import funcnn_modules

torch_ = pytest.importorskip("torch")

pytestmark = [pytest.mark.parity, pytest.mark.usefixtures("one_torch_thread")]

RTOL = 1e-4  # float32, after a few dozen optimiser steps


def _data(n=96, d=20, classes=4, seed=0):
    """A separable-ish classification problem: (features float32, labels int64)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(classes, d))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(size=(n, d))
    return x.astype(np.float32), y.astype(np.int64)


def _run_both(script, **kw):
    """``script(torch)`` with PyTorch, then with funcnn_modules from PyTorch's initial weights."""
    torch_.manual_seed(0)
    ref = script(torch_, init=None, **kw)
    funcnn_modules.manual_seed(0)
    ours = script(funcnn_modules, init=ref["init"], **kw)
    return ref, ours


def _load(torch, model, init):
    """Record the initial weights (PyTorch run) or load them (funcnn_modules run)."""
    if init is None:
        return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    model.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    return init


def _compare(ref, ours):
    assert ours.keys() == ref.keys()
    for key in ref:
        if key == "init":
            continue
        a, b = ref[key], ours[key]
        if isinstance(a, dict):
            assert list(b) == list(a), key
            for name in a:
                np.testing.assert_allclose(
                    b[name], a[name], rtol=RTOL, atol=RTOL, err_msg=f"{key}: {name}"
                )
        else:
            np.testing.assert_allclose(b, a, rtol=RTOL, atol=RTOL, err_msg=key)


def _weights(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- scripts


def classifier_script(torch, init, optimizer_name):
    """A custom nn.Module + nn.Sequential, CrossEntropyLoss, an optimiser loop over mini-batches,
    then a torch.no_grad() evaluation with argmax accuracy."""
    nn = torch.nn
    optim = torch.optim

    class Classifier(nn.Module):
        def __init__(self, in_features, hidden, num_classes):
            super().__init__()
            self.features = nn.Sequential(
                nn.Linear(in_features, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.Tanh(),
            )
            self.dropout = nn.Dropout(p=0.0)
            self.head = nn.Linear(hidden, num_classes)

        def forward(self, x):
            x = self.features(x)
            x = self.dropout(x)
            return self.head(x)

    model = Classifier(20, 32, 4)
    init = _load(torch, model, init)
    x_np, y_np = _data()
    inputs, labels = torch.tensor(x_np), torch.tensor(y_np)
    criterion = nn.CrossEntropyLoss()
    if optimizer_name == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        optimizer = optim.Adam(model.parameters(), lr=1e-2)

    losses = []
    for epoch in range(3):
        model.train()
        running_loss = 0.0
        for i in range(0, len(inputs), 16):
            batch_x, batch_y = inputs[i : i + 16], labels[i : i + 16]
            optimizer.zero_grad()
            outputs = model(batch_x)
            loss = criterion(outputs, batch_y)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            losses.append(loss.item())
        print(f"epoch {epoch + 1}: loss {running_loss / 6:.4f}")

    model.eval()
    correct = 0
    total = 0
    with torch.no_grad():
        outputs = model(inputs)
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()
        accuracy = (outputs.argmax(dim=1) == labels).float().mean().item()
    assert correct / total == pytest.approx(accuracy)
    assert not outputs.requires_grad
    return {
        "init": init,
        "losses": losses,
        "accuracy": accuracy,
        "probs": torch.softmax(outputs, dim=1).numpy(),
        "weights": _weights(model),
    }


def quickstart_script(torch, init):
    """PyTorch's quickstart: Dataset/DataLoader, train() and test() functions, a Sequential
    inside a Module with Flatten, and the accuracy sum `(pred.argmax(1) == y).type(torch.float)`."""
    nn = torch.nn
    from_data = torch.utils.data
    rng = np.random.default_rng(1)
    images = rng.normal(size=(64, 1, 6, 6)).astype(np.float32)
    targets = (images.reshape(64, -1)[:, :3].sum(axis=1) > 0).astype(np.int64)
    training_data = from_data.TensorDataset(torch.tensor(images[:48]), torch.tensor(targets[:48]))
    test_data = from_data.TensorDataset(torch.tensor(images[48:]), torch.tensor(targets[48:]))
    train_dataloader = from_data.DataLoader(training_data, batch_size=8)
    test_dataloader = from_data.DataLoader(test_data, batch_size=8)

    class NeuralNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear_relu_stack = nn.Sequential(
                nn.Linear(36, 16),
                nn.ReLU(),
                nn.Linear(16, 16),
                nn.ReLU(),
                nn.Linear(16, 2),
            )

        def forward(self, x):
            x = self.flatten(x)
            logits = self.linear_relu_stack(x)
            return logits

    model = NeuralNetwork()
    init = _load(torch, model, init)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-1)
    losses, results = [], []

    def train(dataloader, model, loss_fn, optimizer):
        model.train()
        for X, y in dataloader:
            pred = model(X)
            loss = loss_fn(pred, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())

    def test(dataloader, model, loss_fn):
        size = len(dataloader.dataset)
        num_batches = len(dataloader)
        model.eval()
        test_loss, correct = 0, 0
        with torch.no_grad():
            for X, y in dataloader:
                pred = model(X)
                test_loss += loss_fn(pred, y).item()
                correct += (pred.argmax(1) == y).type(torch.float).sum().item()
        test_loss /= num_batches
        correct /= size
        results.append((test_loss, correct))

    for _epoch in range(4):
        train(train_dataloader, model, loss_fn, optimizer)
        test(test_dataloader, model, loss_fn)
    return {"init": init, "losses": losses, "results": results, "weights": _weights(model)}


def autograd_script(torch, init):
    """The autograd tutorial: leaf tensors with requires_grad, a hand-written model, a
    functional loss, .backward(), reading .grad, and a manual update under no_grad."""
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    if init is None:
        init = {
            "w": rng.normal(size=(5, 3)).astype(np.float32),
            "b": rng.normal(size=3).astype(np.float32),
        }
    x = torch.ones(5)  # input tensor
    y = torch.zeros(3)  # expected output
    w = torch.tensor(init["w"], requires_grad=True)
    b = torch.tensor(init["b"], requires_grad=True)
    losses, grads = [], []
    for _ in range(10):
        z = torch.matmul(x, w) + b
        loss = F.binary_cross_entropy_with_logits(z, y)
        loss.backward()
        grads.append(np.concatenate([w.grad.numpy().ravel(), b.grad.numpy()]))
        with torch.no_grad():
            w -= 0.5 * w.grad
            b -= 0.5 * b.grad
            w.grad.zero_()
            b.grad.zero_()
        losses.append(loss.item())
    assert z.requires_grad and w.is_leaf
    with torch.no_grad():
        z = torch.matmul(x, w) + b
    assert not z.requires_grad
    z_det = (torch.matmul(x, w) + b).detach()
    assert not z_det.requires_grad
    return {"init": init, "losses": losses, "grads": grads, "final": z.numpy()}


def regression_script(torch, init):
    """The classic regression tutorial: a Module with nn.Linear layers, MSELoss, Adam, a step
    learning-rate schedule, and evaluation under no_grad."""
    nn = torch.nn
    rng = np.random.default_rng(3)
    x_np = rng.uniform(-2, 2, size=(128, 1)).astype(np.float32)
    y_np = (np.sin(2 * x_np) + 0.1 * rng.normal(size=(128, 1))).astype(np.float32)

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(1, 24)
            self.out = nn.Linear(24, 1)

        def forward(self, x):
            return self.out(torch.tanh(self.hidden(x)))

    model = Regressor()
    init = _load(torch, model, init)
    X, Y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=20, gamma=0.5)
    losses = []
    for _epoch in range(60):
        optimizer.zero_grad()
        loss = criterion(model(X), Y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        grid = torch.linspace(-2, 2, 9).unsqueeze(1)
        predictions = model(grid).squeeze(1)
        test_mse = ((model(X) - Y) ** 2).mean().item()
    assert losses[-1] < losses[0]
    return {
        "init": init,
        "losses": losses,
        "predictions": predictions.numpy(),
        "test_mse": test_mse,
        "lr": scheduler.get_last_lr(),
        "weights": _weights(model),
    }


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_classifier_tutorial_gives_pytorch_numbers(optimizer_name, capsys):
    ref, ours = _run_both(classifier_script, optimizer_name=optimizer_name)
    _compare(ref, ours)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 6 and printed[:3] == printed[3:]  # the same epoch lines printed
    assert ours["accuracy"] > 0.5  # it learned something


def test_quickstart_tutorial_gives_pytorch_numbers():
    ref, ours = _run_both(quickstart_script)
    _compare(ref, ours)
    assert len(ours["losses"]) == 4 * 6 and len(ours["results"]) == 4


def test_autograd_tutorial_gives_pytorch_numbers():
    ref, ours = _run_both(autograd_script)
    _compare(ref, ours)
    assert ours["losses"][-1] < ours["losses"][0]


def test_regression_tutorial_gives_pytorch_numbers():
    ref, ours = _run_both(regression_script)
    _compare(ref, ours)
