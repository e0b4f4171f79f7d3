"""The MLP of mnist_mlp.py with the functional face: a params pytree, pure functions, no classes.

The model is a function of its parameters (a nested dict of NumPy arrays made by
``fn.nn.init``), ``fn.value_and_grad`` differentiates the loss with respect to them,
``fn.optim.adam`` is a pure ``(init, update)`` pair and ``fn.data.batches`` deals out shuffled
mini-batches. Checkpoints are ``fn.save_tree`` files.

    python examples/functional_mlp.py                  # UCI digits (needs scikit-learn)
    python examples/functional_mlp.py --epochs 5     # checkpoint: examples/runs/functional_mlp.safetensors
    python examples/functional_mlp.py --epochs 10 --resume   # go on from it to epoch 10
"""

import itertools

import numpy as np
from _data import load_dataset, parse, parser, progress, write_curves

import funcnn as fn
import funcnn.data
import funcnn.nn as nn
import funcnn.numpy as fnp


def init_params(key, in_features, hidden=256, num_classes=10):
    k1, k2, k3 = fn.random.split(key, 3)
    return {
        "fc1": nn.init.linear(k1, in_features, hidden),  # {"weight": (out, in), "bias": (out,)}
        "fc2": nn.init.linear(k2, hidden, hidden),
        "fc3": nn.init.linear(k3, hidden, num_classes),
    }


def model(params, x):
    """x: (N, 1, H, W) images -> (N, 10) logits."""
    h = fnp.reshape(x, (x.shape[0], -1))
    h = nn.relu(nn.linear(params["fc1"], h))
    h = nn.relu(nn.linear(params["fc2"], h))
    return nn.linear(params["fc3"], h)


def loss_fn(params, x, y):
    logits = model(params, x)
    return nn.cross_entropy(logits, y), logits  # the logits come back as an "aux" output


def main():
    args = parse(
        parser(__doc__.splitlines()[0], name="functional_mlp", epochs=15, batch_size=64, lr=1e-3)
    )
    data = load_dataset(args.dataset, args.data)
    print(f"data: {data.credit}: {len(data.x_train)} train, {len(data.x_test)} test images")
    n_test = 2 * args.batch_size if args.smoke else len(data.x_test)  # --smoke: a few batches
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]

    params = init_params(fn.random.key(args.seed), data.x_train[0].size)
    opt = fn.optim.adam(learning_rate=args.lr)
    opt_state = opt.init(params)
    grad_fn = fn.value_and_grad(loss_fn, has_aux=True)

    start, history = 1, []
    if args.resume:
        saved = fn.load_tree(args.resume)
        params = saved["params"]
        # the optimiser state is a record of pytrees: rebuild it from its saved leaves
        opt_state = fn.tree.unflatten(fn.tree.structure(opt_state), saved["opt_state"])
        start, history = saved["epoch"] + 1, saved["history"]
        print(f"resumed from {args.resume} after epoch {saved['epoch']}")

    n_batches = fn.data.num_batches(len(data.x_train), args.batch_size)
    n_batches = min(n_batches, 3) if args.smoke else n_batches
    for epoch in range(start, args.epochs + 1):
        key = fn.random.fold_in(fn.random.key(args.seed), epoch)  # resumed runs shuffle the same
        train = fn.data.batches(key, (data.x_train, data.y_train), args.batch_size)
        desc, total_loss = f"epoch {epoch}/{args.epochs}", 0.0
        bar = progress(itertools.islice(train, n_batches), n_batches, desc)
        for x, y in bar:
            (loss, _), grads = grad_fn(params, x, y)
            updates, opt_state = opt.update(grads, opt_state, params)
            params = fn.optim.apply_updates(params, updates)
            total_loss += float(loss)
            bar.set_postfix(loss=float(loss))

        test_loss, logits = loss_fn(params, x_test, y_test)  # no grad: plain arrays in and out
        accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
        train_loss = total_loss / n_batches
        history.append(
            dict(epoch=epoch, train_loss=train_loss, test_loss=float(test_loss), test_acc=accuracy)
        )
        print(f"{desc}: train loss {train_loss:.4f}, test accuracy {accuracy:.1%}")
        if args.save:
            fn.save_tree(
                args.save,
                {
                    "params": params,
                    "opt_state": fn.tree.leaves(opt_state),
                    "epoch": epoch,
                    "history": history,
                },
            )

    if history:
        print(f"curves: {write_curves(history, args.out, 'functional_mlp')}")
        if args.save:
            print(f"checkpoint: {args.save}")
        print(f"test accuracy: {history[-1]['test_acc']:.1%}")


if __name__ == "__main__":
    main()
