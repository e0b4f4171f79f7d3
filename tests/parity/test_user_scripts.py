"""Real-world-style PyTorch training scripts, run with PyTorch and with funcnn_modules.

Each script is written the way users write PyTorch code (tutorials, nanoGPT, DCGAN/VAE examples,
checkpointing recipes) against a library argument called ``torch``. It runs once with PyTorch and
once with ``funcnn_modules`` in its place, from PyTorch's initial weights (copied through NumPy
with ``load_state_dict``), and everything it returns must agree: losses, gradients, schedules,
evaluation numbers, final weights, names and orders of parameters.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from collections import OrderedDict

import numpy as np
import pytest

import funcnn_modules

torch_ = pytest.importorskip("torch")

pytestmark = [pytest.mark.parity, pytest.mark.usefixtures("one_torch_thread")]

RTOL = 1e-4  # float32, after a few dozen optimiser steps


def load_init(torch, model, init):
    """Record the initial weights (PyTorch run) or load them (funcnn_modules run)."""
    if init is None:
        return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    model.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    return init


def _differences(a, b, path=""):
    """Where ``b`` (funcnn_modules) differs from ``a`` (PyTorch): a list of messages."""
    bad = []
    if isinstance(a, dict):
        if list(a) != list(b):
            return [f"{path}: keys {list(a)} vs {list(b)}"]
        for k in a:
            bad += _differences(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)) and not (a and isinstance(a[0], (int, float))):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}"]
        for i, (x, y) in enumerate(zip(a, b)):
            bad += _differences(x, y, f"{path}[{i}]")
    elif isinstance(a, (str, bool)) or a is None:
        if a != b:
            bad.append(f"{path}: {a!r} vs {b!r}")
    else:
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape:
            bad.append(f"{path}: shape {x.shape} vs {y.shape}")
        elif x.dtype.kind == "f" and x.dtype != y.dtype:
            bad.append(f"{path}: dtype {x.dtype} vs {y.dtype}")
        elif x.dtype.kind == "f":
            if not np.allclose(y, x, rtol=RTOL, atol=RTOL, equal_nan=True):
                bad.append(f"{path}: max difference {np.max(np.abs(x - y))}")
        elif not np.array_equal(x, y):
            bad.append(f"{path}: {x.tolist()} vs {y.tolist()}")
    return bad


def _run_both(script):
    torch_.manual_seed(0)
    ref = script(torch_, None)
    funcnn_modules.manual_seed(0)
    ours = script(funcnn_modules, ref.get("init"))
    bad = _differences(ref, ours)
    assert not bad, "\n".join(bad[:20])
    return ref, ours


# ----------------------------------------------------------------------------- scripts


def script_custom_module(torch, init):
    nn = torch.nn
    F = torch.nn.functional
    optim = torch.optim
    torch.manual_seed(42)

    class MixtureHead(nn.Module):
        def __init__(self, d, k):
            super().__init__()
            self.centers = nn.ParameterList([nn.Parameter(torch.randn(d)) for _ in range(k)])
            self.scales = nn.ParameterDict(
                {"log_a": nn.Parameter(torch.zeros(k)), "b": nn.Parameter(torch.ones(k))}
            )
            self.register_buffer("running_count", torch.zeros(k))
            self.register_buffer("temperature", torch.tensor(1.5))
            self.proj = nn.Linear(d, d, bias=False)
            nn.init.kaiming_normal_(self.proj.weight, mode="fan_out", nonlinearity="relu")

        def forward(self, x):
            h = F.relu(self.proj(x))
            c = torch.stack(list(self.centers), dim=0)  # (k, d)
            d2 = ((h.unsqueeze(1) - c.unsqueeze(0)) ** 2).sum(-1)  # (n, k)
            logits = -d2 * self.scales["log_a"].exp() / self.temperature + self.scales["b"]
            if self.training:
                with torch.no_grad():
                    self.running_count += (
                        F.one_hot(logits.argmax(1), num_classes=len(self.centers)).sum(0).float()
                    )
            return logits

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Linear(8, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 6)
            )
            self.head = MixtureHead(6, 3)
            self.apply(self._init_weights)

        def _init_weights(self, m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.constant_(m.bias, 0.0)

        def forward(self, x):
            return self.head(self.body(x))

    model = Net()

    def init_normal(m):
        if type(m) is nn.Linear:
            torch.nn.init.normal_(m.weight, mean=0.0, std=0.02)

    model.apply(init_normal)
    init = load_init(torch, model, init)
    names = [n for n, _ in model.named_parameters()]
    bufs = [n for n, _ in model.named_buffers()]
    nparams = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(32, 8)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 3, size=32))
    opt = optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.98), eps=1e-9)
    losses = []
    for _step in range(15):
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(out, y, label_smoothing=0.1)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sd = model.state_dict()
    return dict(
        init=init,
        names=names,
        bufs=bufs,
        nparams=nparams,
        losses=losses,
        sd={k: v.cpu().numpy() for k, v in sd.items()},
        keys=list(sd.keys()),
        rc=model.head.running_count.numpy(),
        nc=len(model.head.centers),
        sk=sorted(model.head.scales.keys()),
    )


def script_cnn(torch, init):
    nn = torch.nn
    F = torch.nn.functional
    optim = torch.optim
    from_data = torch.utils.data
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True

    class Net(nn.Module):
        def __init__(self, num_classes=3):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 8, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(8)
            self.pool = nn.MaxPool2d(2, 2)
            self.dropout = nn.Dropout(0.0)  # p > 0 draws different masks from PyTorch
            self.fc1 = nn.Linear(8 * 2 * 2, 16)
            self.fc2 = nn.Linear(16, num_classes)

        def forward(self, x):
            x = self.pool(F.relu(self.bn1(self.conv1(x))))
            x = self.pool(F.relu(self.bn2(self.conv2(x))))
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = self.dropout(x)
            x = self.fc2(x)
            return F.log_softmax(x, dim=1)

    model = Net().to(device)
    init = load_init(torch, model, init)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 1, 8, 8)).astype(np.float32)
    Y = (X[:, 0, :4].mean(axis=(1, 2)) > 0).astype(np.int64) + (X[:, 0, 4:].mean(axis=(1, 2)) > 0.1)
    ds = from_data.TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    loader = from_data.DataLoader(ds, batch_size=10, shuffle=False)
    optimizer = optim.SGD(
        [
            {"params": list(model.conv1.parameters()) + list(model.conv2.parameters()), "lr": 0.05},
            {"params": model.fc1.parameters()},
            {"params": model.fc2.parameters(), "weight_decay": 0.0},
            {"params": list(model.bn1.parameters()) + list(model.bn2.parameters())},
        ],
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=True,
    )
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1)
    losses, lrs, norms, accs = [], [], [], []
    for _epoch in range(5):
        model.train()
        for _batch_idx, (data, target) in enumerate(loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = F.nll_loss(output, target)
            loss.backward()
            total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            norms.append(float(total_norm))
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        lrs.append([g["lr"] for g in optimizer.param_groups])
        model.eval()
        test_loss = 0
        correct = 0
        with torch.no_grad():
            for data, target in loader:
                output = model(data)
                test_loss += F.nll_loss(output, target, reduction="sum").item()
                pred = output.argmax(dim=1, keepdim=True)
                correct += pred.eq(target.view_as(pred)).sum().item()
                _, predicted = torch.max(output, 1)
                vals, idx = output.max(dim=1)
                assert (idx == predicted).all()
        test_loss /= len(loader.dataset)
        accs.append((test_loss, 100.0 * correct / len(loader.dataset)))
    return dict(
        init=init,
        losses=losses,
        lrs=lrs,
        norms=norms,
        accs=accs,
        rm=model.bn2.running_mean.numpy(),
        rv=model.bn2.running_var.numpy(),
        nbt=model.bn1.num_batches_tracked.item(),
        w={k: v.detach().cpu().numpy() for k, v in model.state_dict().items()},
    )


def script_idioms(torch, init):
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    a_np = rng.normal(size=(4, 3, 5)).astype(np.float32)
    w_np = rng.normal(size=(5, 6)).astype(np.float32)
    out = {}
    a = torch.tensor(a_np, requires_grad=True)
    w = torch.tensor(w_np).requires_grad_()
    n = a.size(0)
    assert a.shape[1:] == (3, 5) and tuple(a.shape[1:]) == (3, 5)
    assert a.size() == torch.Size([4, 3, 5]) and a.size(-1) == 5
    h = a @ w  # (4,3,6)
    h = h.view(-1, 6)  # (12,6)
    h = h.view(n, -1)  # (4,18)
    mask = h > 0.5
    h2 = h.masked_fill(mask, 0.0)
    h3 = torch.where(h2 < -1, torch.zeros_like(h2), h2**2)
    h4 = torch.clamp(h3, min=0.1, max=2.0) + h.clamp(max=1.0)
    idx = torch.tensor(rng.integers(0, 18, size=(4, 2)))
    g = torch.gather(h4, 1, idx)  # (4,2)
    g2 = h4.gather(dim=1, index=idx)
    sc = torch.zeros(4, 18).scatter_(1, idx, 1.0)
    cat = torch.cat([g, g2, sc[:, :3]], dim=1)  # (4,7)
    ex = cat.unsqueeze(1).expand(-1, 3, -1)  # (4,3,7)
    rp = cat.unsqueeze(0).repeat(2, 1, 1)  # (2,4,7)
    m = ex.mean(dim=(1, 2)) + rp.sum(0).mean(1)
    m = m + (a[0].T @ a[1]).sum() * 0.01 + a.mean(dim=[1, 2]).squeeze()
    vals, inds = torch.max(h4, dim=1)
    mn = h4.min(1)[0]
    loss = (m * vals).sum() + mn.pow(2).mean() + (w.T @ w).trace() * 1e-3
    loss = loss + torch.flatten(a, 1).norm(dim=1).sum() + a.abs().max() + x_softplus(F, a)
    loss.backward()
    out["loss"] = loss.item()
    out["ga"] = a.grad.numpy()
    out["gw"] = w.grad.numpy()
    out["inds"] = inds.numpy()
    out["sc"] = sc.numpy()
    out["argsort"] = h.detach().argsort(dim=1, descending=True).numpy()
    t5 = torch.topk(h.detach(), 3, dim=1)
    out["topk"] = (t5.values.numpy(), t5.indices.numpy())
    # float64 path
    d = torch.randn(3, 4, dtype=torch.float64)
    out["d_dtype"] = str(d.dtype)
    e = torch.tensor(a_np[0], dtype=torch.float64, requires_grad=True)
    f = (e.exp() / e.exp().sum(dim=-1, keepdim=True)).log().sum() + (e * 2.5).sigmoid().prod()
    f.backward()
    out["f64"] = f.item()
    out["ge"] = e.grad.numpy()
    # dtype rules
    out["int_div"] = (torch.arange(6) / 4).numpy()
    out["x_mean_int"] = torch.arange(6).float().mean().item()
    out["long_sum"] = str((torch.arange(6) * 2).sum().dtype)
    out["bool_sum"] = (torch.arange(6) > 2).sum().item()
    out["eq"] = torch.tensor([1, 2, 3]).eq(torch.tensor([1, 0, 3])).sum().item()
    out["tril"] = torch.tril(torch.ones(3, 3)).numpy()
    out["triu"] = torch.triu(torch.ones(3, 3), diagonal=1).numpy()
    out["ar"] = torch.arange(0, 10, 2).tolist()
    out["lin"] = torch.linspace(0, 1, steps=5).numpy()
    out["oh"] = F.one_hot(torch.tensor([0, 2, 1]), 3).numpy()
    out["nz"] = torch.nonzero(torch.tensor([0, 1, 0, 2])).numpy()
    out["std"] = torch.tensor(a_np).std(dim=0).numpy()
    out["var"] = torch.tensor(a_np).var(unbiased=False).item()
    out["cumsum"] = torch.tensor(a_np).cumsum(dim=-1).numpy()
    out["chunk"] = [c.numpy() for c in torch.tensor(a_np).chunk(2, dim=2)]
    out["split"] = [c.numpy() for c in torch.tensor(a_np).split([2, 3], dim=-1)]
    out["perm"] = torch.tensor(a_np).permute(2, 0, 1).contiguous().view(5, -1).numpy()
    out["tr"] = torch.tensor(a_np).transpose(1, 2).reshape(4, -1).numpy()
    out["bmm"] = torch.bmm(torch.tensor(a_np), torch.tensor(a_np).transpose(1, 2)).numpy()
    out["ein"] = torch.einsum("bij,bkj->bik", torch.tensor(a_np), torch.tensor(a_np)).numpy()
    return out


def x_softplus(F, a):
    return F.softplus(a).mean() + F.leaky_relu(a, 0.2).sum() * 0.1


def script_gpt(torch, init):
    nn = torch.nn
    F = torch.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self, n_embd, n_head, block_size):
            super().__init__()
            assert n_embd % n_head == 0
            self.c_attn = nn.Linear(n_embd, 3 * n_embd)
            self.c_proj = nn.Linear(n_embd, n_embd)
            self.attn_dropout = nn.Dropout(0.0)
            self.n_head = n_head
            self.n_embd = n_embd
            self.register_buffer(
                "bias",
                torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size),
            )

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            y2 = (
                F.scaled_dot_product_attention(q, k, v, is_causal=True)
                .transpose(1, 2)
                .reshape(B, T, C)
            )
            return self.c_proj(0.5 * (y + y2))

    class Block(nn.Module):
        def __init__(self, n_embd, n_head, block_size):
            super().__init__()
            self.ln_1 = nn.LayerNorm(n_embd)
            self.attn = CausalSelfAttention(n_embd, n_head, block_size)
            self.ln_2 = nn.LayerNorm(n_embd)
            self.mlp = nn.ModuleDict(
                dict(
                    c_fc=nn.Linear(n_embd, 4 * n_embd),
                    c_proj=nn.Linear(4 * n_embd, n_embd),
                    act=nn.GELU(approximate="tanh"),
                )
            )
            m = self.mlp
            self.mlpf = lambda x: m.c_proj(m.act(m.c_fc(x)))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            x = x + self.mlpf(self.ln_2(x))
            return x

    class GPT(nn.Module):
        def __init__(self, vocab_size=11, block_size=8, n_embd=16, n_head=2, n_layer=2):
            super().__init__()
            self.block_size = block_size
            self.transformer = nn.ModuleDict(
                dict(
                    wte=nn.Embedding(vocab_size, n_embd),
                    wpe=nn.Embedding(block_size, n_embd),
                    h=nn.ModuleList([Block(n_embd, n_head, block_size) for _ in range(n_layer)]),
                    ln_f=nn.LayerNorm(n_embd),
                )
            )
            self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight  # weight tying
            self.apply(self._init_weights)
            for pn, p in self.named_parameters():
                if pn.endswith("c_proj.weight"):
                    torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets=None):
            device = idx.device
            b, t = idx.size()
            pos = torch.arange(0, t, dtype=torch.long, device=device).unsqueeze(0)
            tok_emb = self.transformer.wte(idx)
            pos_emb = self.transformer.wpe(pos)
            x = tok_emb + pos_emb
            for block in self.transformer.h:
                x = block(x)
            x = self.transformer.ln_f(x)
            logits = self.lm_head(x)
            loss = None
            if targets is not None:
                loss = F.cross_entropy(
                    logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1
                )
            return logits, loss

        def configure_optimizers(self, weight_decay, learning_rate, betas):
            param_dict = {pn: p for pn, p in self.named_parameters() if p.requires_grad}
            decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
            nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
            optim_groups = [
                {"params": decay_params, "weight_decay": weight_decay},
                {"params": nodecay_params, "weight_decay": 0.0},
            ]
            return torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas)

        @torch.no_grad()
        def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
            for _ in range(max_new_tokens):
                idx_cond = idx if idx.size(1) <= self.block_size else idx[:, -self.block_size :]
                logits, _ = self(idx_cond)
                logits = logits[:, -1, :] / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("Inf")
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.argmax(probs, dim=-1, keepdim=True)
                idx = torch.cat((idx, idx_next), dim=1)
            return idx

    model = GPT()
    n_params = sum(p.numel() for p in model.parameters())
    init = load_init(torch, model, init)
    optimizer = model.configure_optimizers(0.1, 3e-3, (0.9, 0.95))
    rng = np.random.default_rng(4)
    data = torch.tensor(rng.integers(0, 11, size=200))

    def get_batch(i):
        ix = [(i * 7 + j * 13) % 190 for j in range(4)]
        x = torch.stack([data[k : k + 8] for k in ix])
        y = torch.stack([data[k + 1 : k + 9] for k in ix])
        return x, y

    warmup, max_iters = 3, 12

    def get_lr(it):
        if it < warmup:
            return 3e-3 * (it + 1) / warmup
        decay_ratio = (it - warmup) / (max_iters - warmup)
        coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
        return 3e-4 + coeff * (3e-3 - 3e-4)

    losses = []
    for it in range(max_iters):
        lr = get_lr(it)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        X, Y = get_batch(it)
        logits, loss = model(X, Y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    gen = model.generate(torch.tensor([[1, 2, 3]]), 6, temperature=0.8, top_k=5)
    tied = model.transformer.wte.weight is model.lm_head.weight
    return dict(
        init=init,
        n_params=n_params,
        losses=losses,
        gen=gen.numpy(),
        tied=tied,
        keys=list(model.state_dict().keys()),
        w={k: v.detach().numpy() for k, v in model.state_dict().items()},
    )


def script_ckpt(torch, init):
    nn = torch.nn
    F = torch.nn.functional
    optim = torch.optim
    tmp = tempfile.mkdtemp()

    def make():
        return nn.Sequential(
            nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Dropout(p=0.0), nn.Linear(12, 3)
        )

    model = make()
    init = load_init(torch, model, init)
    rng = np.random.default_rng(5)
    X = torch.tensor(rng.normal(size=(24, 6)).astype(np.float32))
    Y = torch.tensor(rng.integers(0, 3, size=24))
    opt = optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4, amsgrad=False)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=1e-4)
    crit = nn.CrossEntropyLoss()

    def train_steps(model, opt, sched, n):
        ls = []
        model.train()
        for _ in range(n):
            opt.zero_grad()
            loss = crit(model(X), Y)
            loss.backward()
            opt.step()
            sched.step()
            ls.append(loss.item())
        return ls

    l1 = train_steps(model, opt, sched, 4)
    path = os.path.join(tmp, "ckpt.pt")
    torch.save(
        {
            "epoch": 4,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "loss": l1[-1],
        },
        path,
    )
    best = copy.deepcopy(model.state_dict())
    l2 = train_steps(model, opt, sched, 4)
    # resume
    model2 = make()
    opt2 = optim.Adam(model2.parameters(), lr=0.01, weight_decay=1e-4)
    sched2 = optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=10, eta_min=1e-4)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model2.load_state_dict(checkpoint["model_state_dict"])
    opt2.load_state_dict(checkpoint["optimizer_state_dict"])
    sched2.load_state_dict(checkpoint["scheduler"])
    epoch = checkpoint["epoch"]
    l2b = train_steps(model2, opt2, sched2, 4)
    assert epoch == 4
    # best weights deep copy unaffected by training
    model3 = make()
    model3.load_state_dict(best)
    model3.eval()
    with torch.no_grad():
        out3 = model3(X)
    # freezing: fine-tune only last layer
    for param in model2.parameters():
        param.requires_grad = False
    model2[-1] = nn.Linear(12, 3)
    with torch.no_grad():
        model2[-1].weight.copy_(torch.tensor(init["4.weight"]))
        model2[-1].bias.fill_(0.1)
    trainable = [n for n, p in model2.named_parameters() if p.requires_grad]
    opt3 = optim.SGD(filter(lambda p: p.requires_grad, model2.parameters()), lr=0.1, momentum=0.5)
    model2.train()
    frozen_before = model2[0].weight.detach().clone()
    ls3 = []
    for _ in range(3):
        opt3.zero_grad()
        loss = F.cross_entropy(model2(X), Y)
        loss.backward()
        opt3.step()
        ls3.append(loss.item())
    None if model2[0].weight.grad is None else model2[0].weight.grad.numpy()
    assert torch.equal(frozen_before, model2[0].weight)
    model2[0].requires_grad_(False)
    # strict=False partial load
    model4 = nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12))
    res = model4.load_state_dict(model2.state_dict(), strict=False)
    missing, unexpected = list(res.missing_keys), sorted(res.unexpected_keys)
    sd_only = {k: v for k, v in torch.load(path)["model_state_dict"].items() if k.startswith("0.")}
    return dict(
        init=init,
        l1=l1,
        l2=l2,
        l2b=l2b,
        out3=out3.numpy(),
        trainable=trainable,
        ls3=ls3,
        missing=missing,
        unexpected=unexpected,
        lr=sched2.get_last_lr(),
        sdk=sorted(sd_only),
        opt_keys=sorted(checkpoint["optimizer_state_dict"].keys()),
        pg=[
            sorted(k for k in g if k != "params")
            for g in checkpoint["optimizer_state_dict"]["param_groups"]
        ],
        state_keys=sorted(checkpoint["optimizer_state_dict"]["state"][0].keys()),
    )


def script_manual(torch, init):
    """Linear/logistic regression from scratch in float64, manual SGD with in-place ops."""
    rng = np.random.default_rng(6)
    torch.manual_seed(0)
    Xn = rng.normal(size=(50, 3))
    true_w = np.array([[1.5], [-2.0], [0.5]])
    yn = Xn @ true_w + 0.3 + 0.1 * rng.normal(size=(50, 1))
    X = torch.from_numpy(Xn)  # float64
    y = torch.tensor(yn, dtype=torch.float64)
    w = torch.zeros(3, 1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.double, requires_grad=True)
    lr = 0.1
    losses = []
    for _epoch in range(30):
        y_pred = X.mm(w) + b
        loss = (y_pred - y).pow(2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b.sub_(lr * b.grad)
            w.grad.zero_()
            b.grad.zero_()
        losses.append(loss.item())
    assert w.dtype == torch.float64 and loss.dtype == torch.float64
    # logistic regression with nn.Linear and manual param update loop
    nn = torch.nn
    model = nn.Linear(3, 1).double()
    init = load_init(torch, model, init)
    labels = (y > y.median()).double()
    lossf = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.5], dtype=torch.float64))
    ll = []
    for _ in range(20):
        model.zero_grad()
        out = model(X)
        l = lossf(out, labels)
        l.backward()
        with torch.no_grad():
            for param in model.parameters():
                param.add_(param.grad, alpha=-0.5)
                param.mul_(1 - 1e-3)
        ll.append(l.item())
    with torch.no_grad():
        probs = torch.sigmoid(model(X))
        preds = (probs > 0.5).float()
        acc = (preds == labels).float().mean().item()
        acc2 = preds.eq(labels.float()).sum().item() / labels.size(0)
    # tensor.data idiom and detach().cpu().numpy()
    for p in model.parameters():
        p.data = p.data * 0.5
    wd = model.weight.detach().cpu().numpy()
    gnorm = torch.norm(torch.cat([p.grad.view(-1) for p in model.parameters()])).item()
    return dict(
        init=init,
        losses=losses,
        w=w.detach().numpy(),
        b=b.item(),
        ll=ll,
        acc=acc,
        acc2=acc2,
        wd=wd,
        gnorm=gnorm,
        probs_dtype=str(probs.dtype),
        med=y.median().item(),
    )


def script_rnn(torch, init):
    nn = torch.nn
    F = torch.nn.functional
    optim = torch.optim

    class SeqClassifier(nn.Module):
        def __init__(self, vocab, emb, hidden, n_classes, num_layers=2):
            super().__init__()
            self.hidden = hidden
            self.num_layers = num_layers
            self.embedding = nn.Embedding(vocab, emb, padding_idx=0)
            self.lstm = nn.LSTM(
                emb,
                hidden,
                num_layers=num_layers,
                batch_first=True,
                bidirectional=True,
                dropout=0.0,
            )
            self.gru = nn.GRU(2 * hidden, hidden, batch_first=True)
            self.fc = nn.Linear(hidden, n_classes)

        def forward(self, x):
            h0 = torch.zeros(self.num_layers * 2, x.size(0), self.hidden).to(x.device)
            c0 = torch.zeros(self.num_layers * 2, x.size(0), self.hidden)
            emb = self.embedding(x)
            out, (hn, cn) = self.lstm(emb, (h0, c0))
            out2, h2 = self.gru(out)
            last = out2[:, -1, :]
            assert torch.allclose(last, h2[-1], atol=1e-6)
            return self.fc(last), hn

    model = SeqClassifier(20, 8, 6, 3)
    init0 = init
    init = load_init(torch, model, None if init0 is None else init0["model"])
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.integers(0, 20, size=(5, 7)))
    y = torch.tensor(rng.integers(0, 3, size=5))
    opt = optim.RMSprop(model.parameters(), lr=0.01, alpha=0.9)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        logits, hn = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
        opt.step()
        losses.append(loss.item())
    # LSTMCell loop with carried state and detach (truncated BPTT)
    cell = nn.LSTMCell(4, 5)
    head = nn.Linear(5, 1)
    cinit = None if init0 is None else init0["cell"]
    cinit = load_init(torch, nn.ModuleDict({"cell": cell, "head": head}), cinit)
    seq = torch.tensor(rng.normal(size=(9, 2, 4)).astype(np.float32))
    tgt = torch.tensor(rng.normal(size=(9, 2, 1)).astype(np.float32))
    hx, cx = torch.zeros(2, 5), torch.zeros(2, 5)
    opt2 = optim.Adagrad(list(cell.parameters()) + list(head.parameters()), lr=0.05)
    tl = []
    for chunk in range(3):
        hx, cx = hx.detach(), cx.detach()
        opt2.zero_grad()
        loss = 0
        for t in range(3):
            i = chunk * 3 + t
            hx, cx = cell(seq[i], (hx, cx))
            loss = loss + F.mse_loss(head(hx), tgt[i])
        loss.backward()
        opt2.step()
        tl.append(loss.item())
    return dict(
        init=dict(model=init, cell=cinit),
        losses=losses,
        tl=tl,
        hn=hn.detach().numpy(),
        w={k: v.detach().numpy() for k, v in model.state_dict().items()},
    )


def script_vae_gan(torch, init):
    nn = torch.nn
    F = torch.nn.functional
    optim = torch.optim
    from_data = torch.utils.data

    class VAE(nn.Module):
        def __init__(self, d=12, z=3):
            super().__init__()
            self.fc1 = nn.Linear(d, 8)
            self.fc21 = nn.Linear(8, z)
            self.fc22 = nn.Linear(8, z)
            self.fc3 = nn.Linear(z, 8)
            self.fc4 = nn.Linear(8, d)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar, eps):
            std = torch.exp(0.5 * logvar)
            return mu + eps * std

        def decode(self, z):
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

        def forward(self, x, eps):
            mu, logvar = self.encode(x.view(-1, 12))
            z = self.reparameterize(mu, logvar, eps)
            return self.decode(z), mu, logvar

    def loss_function(recon_x, x, mu, logvar):
        BCE = F.binary_cross_entropy(recon_x, x.view(-1, 12), reduction="sum")
        KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return BCE + KLD

    vae = VAE()
    G = nn.Sequential(nn.Linear(3, 8), nn.LeakyReLU(0.2, inplace=True), nn.Linear(8, 12), nn.Tanh())
    D = nn.Sequential(nn.Linear(12, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    allm = nn.ModuleDict({"vae": vae, "G": G, "D": D})
    init = load_init(torch, allm, init)
    rng = np.random.default_rng(8)
    data = torch.tensor(rng.uniform(size=(32, 12)).astype(np.float32))
    eps_all = torch.tensor(rng.normal(size=(4, 8, 3)).astype(np.float32))
    noise_all = torch.tensor(rng.normal(size=(4, 8, 3)).astype(np.float32))
    loader = from_data.DataLoader(
        from_data.TensorDataset(data), batch_size=8, shuffle=False, drop_last=True
    )
    opt = optim.Adam(vae.parameters(), lr=1e-2)
    sch = optim.lr_scheduler.LambdaLR(opt, lr_lambda=lambda epoch: 0.95**epoch)
    vl = []
    for _epoch in range(2):
        vae.train()
        train_loss = 0
        for batch_idx, (batch,) in enumerate(loader):
            opt.zero_grad()
            recon, mu, logvar = vae(batch, eps_all[batch_idx])
            loss = loss_function(recon, batch, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            opt.step()
        sch.step()
        vl.append(train_loss / len(loader.dataset))
    # GAN
    criterion = nn.BCEWithLogitsLoss()
    optD = optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    optG = optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    gl = []
    for i, (real,) in enumerate(loader):
        b_size = real.size(0)
        label = torch.full((b_size,), 1.0, dtype=torch.float)
        D.zero_grad()
        output = D(real).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        fake = G(noise_all[i])
        label.fill_(0.0)
        output = D(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        optD.step()
        G.zero_grad()
        label.fill_(1.0)
        output = D(fake).view(-1)
        errG = criterion(output, torch.ones_like(output))
        errG.backward()
        optG.step()
        gl.append((errD_real.item() + errD_fake.item(), errG.item(), output.mean().item()))
    return dict(
        init=init, vl=vl, gl=gl, w={k: v.detach().numpy() for k, v in allm.state_dict().items()}
    )


def script_misc(torch, init):
    nn = torch.nn
    F = torch.nn.functional
    from_data = torch.utils.data

    class MyDataset(from_data.Dataset):
        def __init__(self, n):
            rng = np.random.default_rng(9)
            self.x = rng.normal(size=(n, 1, 6, 6)).astype(np.float32)
            self.y = rng.integers(0, 2, size=n)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, idx):
            return torch.from_numpy(self.x[idx]), int(self.y[idx])

    ds = MyDataset(20)

    def collate(batch):
        xs, ys = zip(*batch)
        return torch.stack(xs), torch.tensor(ys)

    loader = from_data.DataLoader(ds, batch_size=6, collate_fn=collate)
    loader2 = from_data.DataLoader(ds, batch_size=6)
    shapes = [(tuple(a.shape), tuple(b.shape), str(b.dtype)) for a, b in loader]
    shapes2 = [(tuple(a.shape), tuple(b.shape), str(b.dtype)) for a, b in loader2]
    model = nn.Sequential(
        OrderedDict(
            [
                ("conv", nn.Conv2d(1, 3, 3)),
                ("bn", nn.BatchNorm2d(3, momentum=0.2)),
                ("act", nn.ReLU(inplace=True)),
                ("pool", nn.AdaptiveAvgPool2d((1, 1))),
                ("flat", nn.Flatten()),
                ("drop", nn.Dropout(0.5)),
                ("fc", nn.Linear(3, 2)),
            ]
        )
    )
    init = load_init(torch, model, init)
    feats = {}

    def hook(module, inp, out):
        feats["pool"] = out.detach()

    h = model.pool.register_forward_hook(hook)
    xb, yb = next(iter(loader))
    model.eval()
    with torch.no_grad():
        o_eval1 = model(xb)
        o_eval2 = model(xb)
    pooled = feats["pool"].numpy()
    h.remove()
    model.train()
    o_tr = model(xb)
    zeros_frac = None
    with torch.no_grad():
        d = nn.Dropout(p=0.5)
        d.train()
        z = d(torch.ones(1000))
        zeros_frac = (z == 0).float().mean().item()
        vals = sorted(set(np.round(z.numpy(), 4).tolist()))
        d.eval()
        ze = d(torch.ones(10))
    assert 0.4 < zeros_frac < 0.6 and vals == [0.0, 2.0]
    assert (ze == 1).all()
    training_flags = [m.training for m in model.modules()]
    model.eval()
    training_flags2 = [m.training for m in model.modules()]
    names = [n for n, _ in model.named_children()]
    n_mods = len(list(model.modules()))
    rep = repr(model)
    # bn running stats after one train forward
    rm = model.bn.running_mean.numpy().copy()
    rv = model.bn.running_var.numpy().copy()
    # double / to(dtype)
    md = nn.Linear(3, 2).to(torch.float64)
    m16 = nn.Linear(3, 2).double()
    dt = (str(md.weight.dtype), str(m16.bias.dtype))
    # indexing a Sequential and slicing
    sub = model[:2]
    sub_names = [n for n, _ in sub.named_children()]
    fc = model.fc
    with torch.no_grad():
        fc.weight.data.normal_(0, 0.01)
        fc.bias.data.zero_()
    nb = model.get_submodule("bn").num_batches_tracked.item()
    # random_split with generator
    tr, va = from_data.random_split(ds, [15, 5], generator=torch.Generator().manual_seed(42))
    lens = (len(tr), len(va))
    # functional dropout with training flag
    xx = torch.ones(4, 4)
    fd = F.dropout(xx, p=0.5, training=False)
    return dict(
        init=init,
        shapes=shapes,
        shapes2=shapes2,
        o_eval1=o_eval1.numpy(),
        o_eval2=o_eval2.numpy(),
        pooled=pooled,
        training_flags=training_flags,
        training_flags2=training_flags2,
        names=names,
        n_mods=n_mods,
        rep=rep,
        rm=rm,
        rv=rv,
        dt=dt,
        sub_names=sub_names,
        nb=nb,
        lens=lens,
        fd=fd.numpy(),
        otr_shape=tuple(o_tr.shape),
    )


# ----------------------------------------------------------------------------- tests

SCRIPTS = [
    script_custom_module,
    script_cnn,
    script_idioms,
    script_gpt,
    script_ckpt,
    script_manual,
    script_rnn,
    script_vae_gan,
    script_misc,
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__)
def test_user_script_gives_pytorch_numbers(script):
    _run_both(script)
