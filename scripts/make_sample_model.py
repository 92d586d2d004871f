"""Write sample_data/embeddings_predictions_b.npy: a second model's predictions for the docs' comparison.

Model b is the sample model moved part of the way towards the labels, plus its own noise:
a little better on average but not on every row, so that ``cosloss compare`` has
something to find. Deterministic (a fixed seed), so the documented numbers do not change.

    python scripts/make_sample_model.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def model_b(labels: np.ndarray, predictions: np.ndarray, seed: int = 11) -> np.ndarray:
    """95% of the way from the labels to model a's predictions, plus noise of a's size / 4."""
    rng = np.random.default_rng(seed)
    error = predictions - labels
    noise = rng.standard_normal(labels.shape) * float(np.std(error)) / 4
    return (labels + 0.95 * error + noise).astype(np.float32)


def main() -> None:
    labels = np.load(SAMPLE / "embeddings_labels.npy")
    predictions = np.load(SAMPLE / "embeddings_predictions.npy")
    np.save(SAMPLE / "embeddings_predictions_b.npy", model_b(labels, predictions))


if __name__ == "__main__":
    main()
