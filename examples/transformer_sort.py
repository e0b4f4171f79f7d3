"""A small transformer learns to sort sequences of digits, PyTorch-style.

Token and position embeddings, two nn.TransformerEncoderLayer blocks, and a Linear head that
predicts, at every position, the digit that belongs there once the sequence is sorted:
[3, 9, 0, 3, 5, 1, 7, 2] -> [0, 1, 2, 3, 3, 5, 7, 9]. The training data is drawn afresh
each step; Adam's learning rate warms up, then decays as 1/sqrt(step) (LambdaLR, stepped every
batch, as in "Attention Is All You Need").
The score is the share of held-out sequences sorted entirely right.

    python examples/transformer_sort.py [--epochs 5] [--length 8] [--resume [PATH]]
"""

import time

import numpy as np
from _data import parse, parser, progress, write_curves

import funcnn_modules as torch
import funcnn_modules.nn as nn
import funcnn_modules.optim as optim


class SortTransformer(nn.Module):
    def __init__(self, vocab: int, length: int, d_model: int = 64, nhead: int = 4, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(length, d_model)  # a learned vector per position
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, x):
        """x: (batch, length) digits -> (batch, length, vocab) logits."""
        h = self.embed(x) + self.position(torch.arange(x.shape[1]))
        return self.head(self.encoder(h))


def make_batch(rng, batch_size, length, vocab):
    x = rng.integers(0, vocab, size=(batch_size, length))
    return torch.tensor(x), torch.tensor(np.sort(x, axis=1))


@torch.no_grad()
def evaluate(model, x, y):
    """The share of digits and of whole sequences put right, and the predictions."""
    model.eval()
    predicted = model(x).argmax(-1)  # (batch, length)
    right = predicted == y
    return right.float().mean().item(), right.all(-1).float().mean().item(), predicted


def main():
    p = parser(
        __doc__.splitlines()[0],
        name="transformer_sort",
        epochs=5,
        batch_size=64,
        lr=2e-3,
        images=False,
    )
    p.add_argument("--steps", type=int, default=150, help="training steps per epoch")
    p.add_argument("--length", type=int, default=8, help="digits per sequence")
    p.add_argument("--vocab", type=int, default=10, help="draw digits from 0 .. vocab-1")
    p.add_argument("--warmup", type=int, default=100, help="steps of learning-rate warm-up")
    args = parse(p)
    steps = 3 if args.smoke else args.steps
    test_x, test_y = make_batch(np.random.default_rng(12345), 1000, args.length, args.vocab)

    torch.manual_seed(args.seed)
    model = SortTransformer(args.vocab, args.length)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    # the transformer paper's schedule: a linear warm-up to --lr, then decay as 1/sqrt(step)
    # (a function of the step alone, so a resumed run may go on for more epochs)
    warmup = max(1, args.warmup)
    scheduler = optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, (warmup / (step + 1)) ** 0.5)
    )
    loss_fn = nn.CrossEntropyLoss()

    start, history = 1, []
    if args.resume:
        checkpoint = torch.load(args.resume)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        start, history = checkpoint["epoch"] + 1, checkpoint["history"]
        print(f"resumed from {args.resume} after epoch {checkpoint['epoch']}")

    began = time.perf_counter()
    for epoch in range(start, args.epochs + 1):
        rng = np.random.default_rng([args.seed, epoch])  # a resumed run sees the same data
        model.train()
        desc, total = f"epoch {epoch}/{args.epochs}", 0.0
        bar = progress(range(steps), steps, desc)
        for _ in bar:
            x, y = make_batch(rng, args.batch_size, args.length, args.vocab)
            logits = model(x)
            loss = loss_fn(logits.reshape(-1, args.vocab), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
            bar.set_postfix(loss=loss.item())
        token_acc, seq_acc, predicted = evaluate(model, test_x, test_y)
        history.append(
            dict(epoch=epoch, train_loss=total / steps, token_acc=token_acc, sequence_acc=seq_acc)
        )
        print(
            f"{desc}: train loss {total / steps:.4f}, digits right {token_acc:.1%}, "
            f"sequences sorted {seq_acc:.1%} ({time.perf_counter() - began:.0f}s)"
        )
        if args.save:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            state["scheduler"] = scheduler.state_dict()
            torch.save({**state, "epoch": epoch, "history": history}, args.save)

    if history:
        for row, out in zip(test_x[:3].tolist(), predicted[:3].tolist()):
            print(f"{row} -> {out}")
        print(f"curves: {write_curves(history, args.out, 'transformer_sort')}")
        if args.save:
            print(f"checkpoint: {args.save}")
        print(f"sequence accuracy: {history[-1]['sequence_acc']:.1%}")


if __name__ == "__main__":
    main()
