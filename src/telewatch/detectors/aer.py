"""AER: auto-encoder with regression (Wong et al., arXiv 2212.13558), on CPU torch (``deep`` extra).

An LSTM encoder-decoder reconstructs each window **and** regresses, from the window's code, the point
just after it and the point just before it. Training minimises the three squared errors together, so
the code must carry both the window's shape and where the series goes next. The paper combines the
bidirectional regression error with the reconstruction error; telewatch scores *causally* (the score
at ``t`` may not use points after ``t``), so it keeps the two errors that are known at ``t``:

* the **forward** regression error of ``x_t`` predicted from the window ending at ``t - 1``;
* the **reconstruction** error of ``x_t`` as the newest point of the window ending at ``t``.

Each error is put on a robust z scale learned from the training series and the two are mixed with
weight ``reconstruction_weight`` (the backward head only regularises training).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from telewatch.detectors.autoencoder import (
    _lstm_ae_module,
    _TorchWindowDetector,
    causal_windows,
    robust_standardise,
)
from telewatch.detectors.registry import register

FloatArray = npt.NDArray[np.float64]


@register("aer")
class AER(_TorchWindowDetector):
    """Reconstruction + forward-prediction anomaly score of an LSTM auto-encoder with regression.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=1500, freq="1min")
    >>> s = pd.Series(np.sin(np.arange(1500) / 15.0), index=idx)
    >>> s.iloc[1300] = 3.0
    >>> det = AER(epochs=3).fit(s.iloc[:1000])
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
        reconstruction_weight: float = 0.5,
        random_state: int = 0,
    ) -> None:
        self.window = window
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_windows = max_windows
        self.reconstruction_weight = reconstruction_weight
        self.random_state = random_state

    def _build(self, torch: Any) -> Any:
        return _lstm_ae_module(torch, self.hidden, self.window, heads=2)

    def _loss(self, torch: Any, model: Any, batch: Any, fwd: Any, bwd: Any) -> Any:
        recon, heads = model(batch)
        return (
            torch.mean((recon - batch) ** 2)
            + torch.mean((heads[:, 0] - fwd) ** 2)
            + torch.mean((heads[:, 1] - bwd) ** 2)
        )

    def _parts(self, torch: Any, z: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Reconstruction error of each newest point, forward-prediction error of each point."""
        windows = causal_windows(z, self.window)
        outs = self._batched(torch, lambda b: self.model_(b), windows)
        recon = torch.cat([o[0][:, -1] for o in outs]).numpy().astype("float64")
        ahead = torch.cat([o[1][:, 0] for o in outs]).numpy().astype("float64")
        rec_err = np.abs(recon - z)
        # the prediction for x_t comes from the window ending at t-1; the first point has none
        pred_err = np.empty_like(z)
        pred_err[1:] = np.abs(ahead[:-1] - z[1:])
        pred_err[:1] = rec_err[:1]
        return rec_err, pred_err

    def _learn_error_scales(self, torch: Any, z: FloatArray) -> None:
        rec_err, pred_err = self._parts(torch, z)
        self.rec_center_, self.rec_scale_ = robust_standardise(rec_err[self.window :])
        self.pred_center_, self.pred_scale_ = robust_standardise(pred_err[self.window :])

    def _errors(self, torch: Any, z: FloatArray) -> FloatArray:
        rec_err, pred_err = self._parts(torch, z)
        w = self.reconstruction_weight
        rec = (rec_err - self.rec_center_) / self.rec_scale_
        pred = (pred_err - self.pred_center_) / self.pred_scale_
        return np.asarray(w * rec + (1.0 - w) * pred)
