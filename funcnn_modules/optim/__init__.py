"""PyTorch-style stateful optimisers (``torch.optim``) over the pure ``funcnn.optim`` functions.

    import funcnn_modules.optim as optim
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=10)
    for x, y in loader:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    scheduler.step()

``SGD Adam AdamW RMSprop Adagrad NAdam RAdam Adamax Adadelta`` keep torch.optim's constructors,
defaults, ``param_groups`` and ``state_dict`` layout, and give its numbers step for step.
"""

from funcnn_modules.optim import lr_scheduler
from funcnn_modules.optim._optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    NAdam,
    RAdam,
    RMSprop,
)
from funcnn_modules.optim.optimizer import Optimizer

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "NAdam",
    "RAdam",
    "Adamax",
    "Adadelta",
    "lr_scheduler",
]
