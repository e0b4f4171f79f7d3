"""A character-level LSTM language model on the Zen of Python, with the functional face.

The text, PEP 20 by Tim Peters, ships with Python (``import this``). The model embeds each character, runs one
LSTM layer (``fn.nn.lstm``) and predicts the next character with a linear head; it trains on
random windows of the text with Adam and gradient clipping (``fn.optim.chain``), then writes
new text one character at a time, drawn with an explicit random key.

    python examples/char_lstm.py [--epochs 6] [--steps 100] [--temperature 0.8] [--resume [PATH]]
"""

import codecs
import contextlib
import io
import math
import time

import numpy as np
from _data import parse, parser, progress, write_curves

import funcnn as fn
import funcnn.nn as nn
import funcnn.numpy as fnp


def zen_of_python():
    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the Zen
        import this
    return codecs.decode(this.s, "rot13")


def init_params(key, vocab, embed=32, hidden=128):
    k1, k2, k3 = fn.random.split(key, 3)
    return {
        "embed": nn.init.embedding(k1, vocab, embed),  # {"weight": (vocab, embed)}
        "lstm": nn.init.lstm_cell(k2, embed, hidden),  # weight_ih (4H, E), weight_hh (4H, H), ...
        "head": nn.init.linear(k3, hidden, vocab),
    }


def model(params, tokens, carry=None):
    """tokens: (seq, batch) ints -> logits (seq, batch, vocab) and the LSTM's final (h, c)."""
    out, carry = nn.lstm(params["lstm"], nn.embedding(params["embed"], tokens), carry)
    return nn.linear(params["head"], out), carry


def loss_fn(params, inputs, targets):
    logits, _ = model(params, inputs)
    vocab = logits.shape[-1]
    return nn.cross_entropy(fnp.reshape(logits, (-1, vocab)), fnp.reshape(targets, (-1,)))


def sample(params, key, prompt, length, chars, temperature):
    """Continue ``prompt`` by ``length`` characters drawn from the model."""
    index = {c: i for i, c in enumerate(chars)}
    logits, carry = model(params, np.array([[index[c]] for c in prompt]))  # read the prompt
    text = prompt
    for _ in range(length):
        key, sub = fn.random.split(key)
        # the Gumbel-max trick: argmax(logits / T + Gumbel noise) samples softmax(logits / T)
        u = fn.random.uniform(sub, (len(chars),), minval=1e-12)
        i = int(np.argmax(logits[-1, 0] / temperature - np.log(-np.log(u))))
        text += chars[i]
        logits, carry = model(params, np.array([[i]]), carry)
    return text


def main():
    p = parser(
        __doc__.splitlines()[0], name="char_lstm", epochs=6, batch_size=32, lr=3e-3, images=False
    )
    p.add_argument("--steps", type=int, default=100, help="training steps per epoch")
    p.add_argument("--seq-len", type=int, default=48)
    p.add_argument("--temperature", type=float, default=0.8)
    args = parse(p)
    steps = 3 if args.smoke else args.steps

    text = zen_of_python()
    chars = sorted(set(text))
    data = np.array([chars.index(c) for c in text])
    print(
        f"text: the Zen of Python (Tim Peters, PEP 20; shipped with Python as `this`), "
        f"{len(text)} characters, {len(chars)} distinct"
    )

    key = fn.random.key(args.seed)
    params = init_params(fn.random.fold_in(key, 0), len(chars))
    opt = fn.optim.chain(fn.optim.clip_by_global_norm(1.0), fn.optim.adam(args.lr))
    opt_state = opt.init(params)
    grad_fn = fn.value_and_grad(loss_fn)

    start, history = 1, []
    if args.resume:
        saved = fn.load_tree(args.resume)
        params = saved["params"]
        opt_state = fn.tree.unflatten(fn.tree.structure(opt_state), saved["opt_state"])
        start, history = saved["epoch"] + 1, saved["history"]
        print(f"resumed from {args.resume} after epoch {saved['epoch']}")

    began = time.perf_counter()
    offsets = np.arange(args.seq_len + 1)
    for epoch in range(start, args.epochs + 1):
        rng = np.random.default_rng([args.seed, epoch])  # a resumed run sees the same windows
        desc, total = f"epoch {epoch}/{args.epochs}", 0.0
        bar = progress(range(steps), steps, desc)
        for _ in bar:
            starts = rng.integers(0, len(data) - args.seq_len, size=args.batch_size)
            windows = data[starts[None, :] + offsets[:, None]]  # (seq_len + 1, batch)
            loss, grads = grad_fn(params, windows[:-1], windows[1:])
            updates, opt_state = opt.update(grads, opt_state, params)
            params = fn.optim.apply_updates(params, updates)
            total += float(loss)
            bar.set_postfix(loss=float(loss))
        whole = float(loss_fn(params, data[:-1, None], data[1:, None]))  # over the whole text
        history.append(dict(epoch=epoch, train_loss=total / steps, text_loss=whole))
        print(
            f"{desc}: train loss {total / steps:.3f}, whole text {whole / math.log(2):.2f} "
            f"bits per character ({time.perf_counter() - began:.0f}s)"
        )
        if args.save:
            tree = {"params": params, "opt_state": fn.tree.leaves(opt_state)}
            fn.save_tree(args.save, {**tree, "epoch": epoch, "history": history})

    if history:
        print(f"curves: {write_curves(history, args.out, 'char_lstm')}")
        if args.save:
            print(f"checkpoint: {args.save}")
        length = 40 if args.smoke else 300
        text = sample(
            params, fn.random.fold_in(key, 1), "Beautiful", length, chars, args.temperature
        )
        print(f"sample:\n{text}")
        print(f"bits per character: {history[-1]['text_loss'] / math.log(2):.2f}")


if __name__ == "__main__":
    main()
