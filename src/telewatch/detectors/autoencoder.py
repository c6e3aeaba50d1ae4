"""LSTM autoencoder on sliding windows (CPU torch, the ``deep`` extra).

The series is standardised with its train median and robust scale; every window of ``window``
points ending at ``t`` is encoded by an LSTM into a small vector and decoded back. The score at ``t``
is the reconstruction error of the window's *last* point (the newest one, so the score is causal and a
spike is scored where it happens, not smeared over the following window), expressed as a robust z
against the train errors. torch is imported only when a model is trained or used; without it, a
:class:`~telewatch.core.errors.ConfigError` says ``pip install 'telewatch[deep]'``.

Training is deliberately small: at most ``max_windows`` windows sampled from the training series,
``epochs`` passes, hidden size ``hidden`` — a month of minute data trains in seconds on 2 cores.
Seeds are fixed by ``random_state``, so a fit is repeatable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from telewatch.core.errors import ConfigError
from telewatch.core.series import MAD_TO_SIGMA
from telewatch.detectors.base import Detector
from telewatch.detectors.registry import register

if TYPE_CHECKING:
    import torch

FloatArray = npt.NDArray[np.float64]


def import_torch() -> Any:
    """Import torch lazily, with an error that says how to get it."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - CI installs the extra
        raise ConfigError("this detector needs torch (CPU build): pip install 'telewatch[deep]'") from exc
    return torch


@contextlib.contextmanager
def one_thread(torch: Any) -> Iterator[None]:
    """Run torch on one intra-op thread: these models are small, and spinning worker threads
    oversubscribe a busy machine (many metrics are scored side by side, not one fat model)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def robust_standardise(values: FloatArray) -> tuple[float, float]:
    """Median and robust scale of the finite ``values`` (1.4826·MAD, else std, else 1)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    med = float(np.median(finite))
    scale = MAD_TO_SIGMA * float(np.median(np.abs(finite - med)))
    if scale <= 0:
        scale = float(np.std(finite))
    return med, scale if scale > 0 else max(abs(med) * 0.01, 1.0)


def causal_windows(z: FloatArray, window: int) -> FloatArray:
    """Windows (rows × window) ending at each point; the start is padded with the first value."""
    pad = np.full(window - 1, z[0] if z.size else 0.0)
    padded = np.concatenate([pad, z])
    return np.lib.stride_tricks.sliding_window_view(padded, window).astype("float32")


def error_z(errors: FloatArray, center: float, scale: float) -> FloatArray:
    return np.asarray((errors - center) / scale)


class _TorchWindowDetector(Detector):
    """Shared machinery of the window models: standardise, window, train, score in batches."""

    test_params: ClassVar[dict[str, Any]] = {"epochs": 1, "hidden": 4, "window": 8, "max_windows": 256}

    window: int
    hidden: int
    epochs: int
    batch_size: int
    learning_rate: float
    max_windows: int
    random_state: int
    model_: Any

    def _build(self, torch: Any) -> Any:
        raise NotImplementedError

    def _loss(self, torch: Any, model: Any, batch: Any, fwd: Any, bwd: Any) -> Any:
        raise NotImplementedError

    def _errors(self, torch: Any, z: FloatArray) -> FloatArray:
        raise NotImplementedError

    # the torch module is a local class: pickle its weights as arrays and rebuild it on load
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        model = state.get("model_")
        if model is not None:
            state["model_"] = None
            state["model_weights_"] = {
                k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("model_weights_", None)
        self.__dict__.update(state)
        if weights is not None:
            torch = import_torch()
            model = self._build(torch)
            model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
            model.eval()
            self.model_ = model

    def _learn_error_scales(self, torch: Any, z: FloatArray) -> None:
        """Hook: learn from the training series what combining several errors needs."""

    def _standardised(self, series: pd.Series) -> FloatArray:
        z = (series.to_numpy(dtype="float64") - self.center_) / self.scale_
        return np.asarray(np.clip(np.nan_to_num(z, nan=0.0), -1e4, 1e4))

    def _fit(self, series: pd.Series) -> None:
        if self.window < 2 or self.hidden < 1 or self.epochs < 0:
            raise ConfigError(f"{self.type_name}: window must be >= 2, hidden >= 1 and epochs >= 0")
        torch = import_torch()
        with one_thread(torch):
            self._fit_model(torch, series)

    def _fit_model(self, torch: Any, series: pd.Series) -> None:
        self.center_, self.scale_ = robust_standardise(series.to_numpy(dtype="float64"))
        z = self._standardised(series)
        self.model_ = None
        if np.count_nonzero(series.notna().to_numpy()) < self.window + 2:
            self.err_center_, self.err_scale_ = 0.0, 1.0  # too short to learn: plain robust z
            return
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        # windows z[i-w-1 .. i+1]: the previous point, the window, the next point
        n_full = z.size - self.window - 1
        starts = np.arange(n_full)
        if starts.size > self.max_windows:
            starts = np.sort(rng.choice(starts, self.max_windows, replace=False))
        full = np.lib.stride_tricks.sliding_window_view(z, self.window + 2)[starts].astype("float32")
        x = torch.from_numpy(full[:, 1:-1].copy())
        bwd = torch.from_numpy(full[:, 0].copy())
        fwd = torch.from_numpy(full[:, -1].copy())
        model = self._build(torch)
        opt = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        gen = torch.Generator().manual_seed(self.random_state)
        model.train()
        for _ in range(self.epochs):
            order = torch.randperm(x.shape[0], generator=gen)
            for i in range(0, x.shape[0], self.batch_size):
                idx = order[i : i + self.batch_size]
                opt.zero_grad()
                loss = self._loss(torch, model, x[idx], fwd[idx], bwd[idx])
                loss.backward()
                opt.step()
        model.eval()
        self.model_ = model
        # error scales from the newest stretch of training (max_windows points): cheap and enough
        tail = z[-(self.max_windows + self.window) :]
        self._learn_error_scales(torch, tail)
        errors = self._errors(torch, tail)
        self.err_center_, self.err_scale_ = robust_standardise(errors[self.window :])

    def _score(self, series: pd.Series) -> pd.Series:
        z = self._standardised(series)
        if self.model_ is None or z.size == 0:
            return pd.Series(np.abs(z), index=series.index)
        torch = import_torch()
        with one_thread(torch):
            errors = self._errors(torch, z)
        return pd.Series(error_z(errors, self.err_center_, self.err_scale_), index=series.index)

    def _batched(self, torch: Any, fn: Any, windows: FloatArray) -> list[Any]:
        outs = []
        with torch.no_grad():
            for i in range(0, windows.shape[0], 4096):
                outs.append(fn(torch.from_numpy(np.ascontiguousarray(windows[i : i + 4096]))))
        return outs


def _lstm_ae_module(torch: Any, hidden: int, window: int, heads: int) -> Any:
    """Encoder LSTM → code → repeated → decoder LSTM → per-step value; ``heads`` extra regressors."""
    nn = torch.nn

    class LSTMAE(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.LSTM(1, hidden, batch_first=True)
            self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
            self.out = nn.Linear(hidden, 1)
            self.heads = nn.Linear(hidden, heads) if heads else None

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            _, (h, _) = self.encoder(x.unsqueeze(-1))
            code = h[-1]
            dec, _ = self.decoder(code.unsqueeze(1).repeat(1, window, 1))
            recon = self.out(dec).squeeze(-1)
            return recon, (self.heads(code) if self.heads is not None else None)

    return LSTMAE()


@register("lstm_ae")
class LSTMAutoencoder(_TorchWindowDetector):
    """LSTM autoencoder: robust z of the newest point's reconstruction error (needs ``telewatch[deep]``).

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=1500, freq="1min")
    >>> s = pd.Series(np.sin(np.arange(1500) / 15.0), index=idx)
    >>> s.iloc[1300] = 3.0
    >>> det = LSTMAutoencoder(epochs=3).fit(s.iloc[:1000])
    >>> int(det.score(s.iloc[1000:], context=s.iloc[:1000]).to_numpy().argmax()) + 1000
    1300
    """

    def __init__(
        self,
        window: int = 32,
        hidden: int = 16,
        epochs: int = 5,
        batch_size: int = 128,
        learning_rate: float = 0.01,
        max_windows: int = 4096,
        random_state: int = 0,
    ) -> None:
        self.window = window
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_windows = max_windows
        self.random_state = random_state

    def _build(self, torch: Any) -> Any:
        return _lstm_ae_module(torch, self.hidden, self.window, heads=0)

    def _loss(self, torch: Any, model: Any, batch: Any, fwd: Any, bwd: Any) -> Any:
        recon, _ = model(batch)
        return torch.mean((recon - batch) ** 2)

    def _errors(self, torch: Any, z: FloatArray) -> FloatArray:
        windows = causal_windows(z, self.window)
        outs = self._batched(torch, lambda b: self.model_(b)[0][:, -1] - b[:, -1], windows)
        return np.abs(torch.cat(outs).numpy().astype("float64"))
