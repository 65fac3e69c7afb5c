"""dltune quickstart: tune a small neural network on the embedded SQLite default.

Until the PyTorch trainer lands (issue #3), this example trains a two-layer network written in
numpy on a noisy two-spiral data set: the learning rate, optimizer (SGD, momentum, Adam),
activation, width and weight decay are tuned, the validation loss is reported every epoch, and
the median pruner stops hopeless trials. Two worker processes share one SQLite study.

Run it twice: the second run resumes the study in ``dltune.db`` and stops at the same budget.
Inspect the result with ``dltune studies``, ``dltune trials quickstart`` and ``dltune best
quickstart``.
"""

from __future__ import annotations

import argparse

import numpy as np

import dltune
from dltune.pruners import MedianPruner
from dltune.samplers import RandomSampler


def make_spirals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals with noise: not linearly separable."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    label = rng.integers(0, 2, n)
    sign = np.where(label == 1, 1.0, -1.0)
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) / (3 * np.pi)
    return x + rng.normal(0.0, 0.05, x.shape), label


ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
}


def objective(trial: dltune.Trial) -> float:
    """Train for up to 40 epochs and return the best validation log-loss."""
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    optimizer = trial.suggest_categorical("optimizer", ["sgd", "momentum", "adam"])
    momentum = trial.suggest_float("momentum", 0.5, 0.99) if optimizer == "momentum" else 0.0
    activation = trial.suggest_categorical("activation", list(ACTIVATIONS))
    width = trial.suggest_int("width", 8, 128, log=True)
    weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)

    x, y = make_spirals(1200, seed=0)
    x_train, y_train, x_val, y_val = x[:900], y[:900], x[900:], y[900:]
    rng = np.random.default_rng(trial.number)
    params = [
        rng.normal(0, np.sqrt(2 / 2), (2, width)),
        np.zeros(width),
        rng.normal(0, np.sqrt(1 / width), (width, 1)),
        np.zeros(1),
    ]
    state = [np.zeros_like(p) for p in params] + [np.zeros_like(p) for p in params]
    act, dact = ACTIVATIONS[activation]

    def forward(xb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = xb @ params[0] + params[1]
        h = act(z)
        logits = (h @ params[2] + params[3])[:, 0]
        return z, h, logits

    def log_loss(logits: np.ndarray, yb: np.ndarray) -> float:
        return float(np.mean(np.logaddexp(0.0, logits) - yb * logits))

    best = float("inf")
    step_count = 0
    for epoch in range(40):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            xb, yb = x_train[idx], y_train[idx]
            z, h, logits = forward(xb)
            g_logits = (1 / (1 + np.exp(-logits)) - yb)[:, None] / len(idx)
            g_h = g_logits @ params[2].T * dact(z)
            grads = [xb.T @ g_h, g_h.sum(0), h.T @ g_logits, g_logits.sum(0)]
            step_count += 1
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                g = g + weight_decay * p
                if optimizer == "adam":
                    m, v = state[i], state[i + 4]
                    m[:] = 0.9 * m + 0.1 * g
                    v[:] = 0.999 * v + 0.001 * g * g
                    m_hat = m / (1 - 0.9**step_count)
                    v_hat = v / (1 - 0.999**step_count)
                    p -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
                else:
                    state[i][:] = momentum * state[i] + g
                    p -= lr * state[i]
        with np.errstate(over="ignore", invalid="ignore"):
            val_loss = log_loss(forward(x_val)[2], y_val)
        trial.report(val_loss, epoch)
        if not np.isfinite(val_loss) or trial.should_prune():
            raise dltune.TrialPruned()
        best = min(best, val_loss)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--storage", default="sqlite:///dltune.db")
    parser.add_argument("--study", default="quickstart")
    parser.add_argument("--n-trials", type=int, default=60)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    study = dltune.create_study(
        study_name=args.study,
        storage=args.storage,
        direction="minimize",
        sampler=RandomSampler(seed=args.seed),
        pruner=MedianPruner(n_startup_trials=5, n_warmup_steps=5),
        load_if_exists=True,
    )
    study.optimize(objective, n_trials=args.n_trials, n_jobs=args.n_jobs)

    states = [t.state.name for t in study.trials]
    print(f"study {args.study!r} in {args.storage}: {len(states)} trials")
    for state in ("COMPLETE", "PRUNED", "FAIL"):
        print(f"  {state:<9}{states.count(state)}")
    best = study.best_trial
    print(f"best trial #{best.number}: validation log-loss {best.value:.4f}")
    for name, value in best.params.items():
        print(f"  {name:<13}{value}")
    print(f"inspect it: dltune trials {args.study} --storage {args.storage}")


if __name__ == "__main__":
    main()
