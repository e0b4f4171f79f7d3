"""The training loop of PyTorch's tutorials, on handwritten digits: only the imports differ.

An MLP (Flatten, Linear, ReLU, Linear, ReLU, Linear), CrossEntropyLoss, SGD with momentum or
Adam, and the tutorial's ``train_loop`` / ``test_loop``.

    python examples/mnist_mlp.py                       # UCI digits (needs scikit-learn)
    python examples/mnist_mlp.py --optimizer adam --lr 1e-3
    python examples/mnist_mlp.py --dataset mnist5k     # or --data DIR with MNIST IDX files
"""

import itertools

from _data import load_dataset, parse, parser, progress, write_curves

import funcnn_modules as torch
import funcnn_modules.nn as nn
import funcnn_modules.optim as optim
from funcnn_modules.utils.data import DataLoader, TensorDataset


class NeuralNetwork(nn.Module):
    def __init__(self, in_features: int, hidden: int = 256, num_classes: int = 10):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


def train_loop(dataloader, model, loss_fn, optimizer, max_batches, desc):
    model.train()
    total, batches = 0.0, min(len(dataloader), max_batches)
    bar = progress(itertools.islice(dataloader, batches), batches, desc)
    for X, y in bar:
        pred = model(X)
        loss = loss_fn(pred, y)

        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        total += loss.item()
        bar.set_postfix(loss=loss.item())
    return total / batches


def test_loop(dataloader, model, loss_fn):
    model.eval()
    test_loss, correct = 0.0, 0.0
    with torch.no_grad():
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item() * len(y)
            correct += (pred.argmax(1) == y).float().sum().item()
    size = len(dataloader.dataset)
    return test_loss / size, correct / size


def main():
    p = parser(__doc__.splitlines()[0], name="mnist_mlp", epochs=20, batch_size=64, lr=0.05)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    args = parse(p)
    data = load_dataset(args.dataset, args.data)
    print(f"data: {data.credit}: {len(data.x_train)} train, {len(data.x_test)} test images")
    n_test = 2 * args.batch_size if args.smoke else len(data.x_test)  # --smoke: a few batches
    training_data = TensorDataset(torch.tensor(data.x_train), torch.tensor(data.y_train))
    test_data = TensorDataset(
        torch.tensor(data.x_test[:n_test]), torch.tensor(data.y_test[:n_test])
    )
    test_dataloader = DataLoader(test_data, batch_size=500)

    torch.manual_seed(args.seed)
    model = NeuralNetwork(data.x_train[0].size)
    loss_fn = nn.CrossEntropyLoss()
    if args.optimizer == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    else:
        optimizer = optim.Adam(model.parameters(), lr=args.lr)

    start, history = 1, []
    if args.resume:
        checkpoint = torch.load(args.resume)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        start, history = checkpoint["epoch"] + 1, checkpoint["history"]
        print(f"resumed from {args.resume} after epoch {checkpoint['epoch']}")

    for t in range(start, args.epochs + 1):
        torch.manual_seed(args.seed * 1000 + t)  # a resumed run shuffles as an unbroken one
        train_dataloader = DataLoader(training_data, batch_size=args.batch_size, shuffle=True)
        desc = f"epoch {t}/{args.epochs}"
        max_batches = 3 if args.smoke else len(train_dataloader)
        train_loss = train_loop(train_dataloader, model, loss_fn, optimizer, max_batches, desc)
        test_loss, accuracy = test_loop(test_dataloader, model, loss_fn)
        history.append(dict(epoch=t, train_loss=train_loss, test_loss=test_loss, test_acc=accuracy))
        print(f"{desc}: train loss {train_loss:.4f}, test accuracy {accuracy:.1%}")
        if args.save:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            torch.save({**state, "epoch": t, "history": history}, args.save)

    if history:
        print(f"curves: {write_curves(history, args.out, 'mnist_mlp')}")
        if args.save:
            print(f"checkpoint: {args.save}")
        print(f"test accuracy: {history[-1]['test_acc']:.1%}")


if __name__ == "__main__":
    main()
