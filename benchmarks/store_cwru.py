"""The fault classifier in a store, on CWRU's real recordings: started on the normal recording
and one fault type, then updated with the other fault types one at a time (a new class each
time); its final accuracy on the leak-free test windows (each recording's last 30 %), beside
``retain run --scenario recordings --by fault``'s replay figure (run separately).

    PYTHONPATH=src python benchmarks/store_cwru.py /work/shared/data/cwru OUT_DIR [EPOCHS]

The settings are ``retain run``'s recordings defaults, read from its ``RUN_DEFAULTS`` (vibration
CNN on envelope spectra, 10 epochs, batch 32, Adam 3e-3, replay of 200; ``EPOCHS`` overrides
the epochs); the store keeps 20 % of each file out for its gate.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from retain.store.store import Store
from retain.strategies import make_strategy
from retain.vibration import recordings_stream
from retain.vibration.run_recordings import RUN_DEFAULTS


def write(path: Path, dataset, classes: list[str]) -> Path:
    x, y = dataset.tensors[0].numpy(), dataset.tensors[1].numpy()
    np.savez(path, x=x, label=np.asarray(classes)[y])
    return path


def main(data: str, out: str, epochs: int = RUN_DEFAULTS["epochs"]) -> None:
    torch.set_num_threads(1)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stream = recordings_stream(data, by="fault", fs=12000.0)  # 97.mat (normal) is at 48 kHz
    classes = stream.info["classes"]
    print(f"experiences: {[e.name for e in stream]}; classes {classes}")
    files = [write(out_dir / f"train-{i}.npz", e.train, classes) for i, e in enumerate(stream)]
    first = out_dir / "train-0+1.npz"
    with np.load(files[0]) as a, np.load(files[1]) as b:
        np.savez(first, x=np.concatenate([a["x"], b["x"]]),
                 label=np.concatenate([a["label"], b["label"]]))
    store = Store(out_dir / "store")
    defaults = RUN_DEFAULTS["strategy_defaults"]
    start = time.perf_counter()
    version = store.init(first, model="vibration-cnn",
                         model_args={"features": "envelope", "fs": stream.info["fs"]},
                         strategies=[make_strategy("replay", **defaults["replay"])],
                         optimizer=RUN_DEFAULTS["optimizer"], lr=RUN_DEFAULTS["lr"],
                         epochs=epochs, batch_size=RUN_DEFAULTS["batch_size"],
                         holdout="random")
    print(f"v{version.id} {version.status}: holdout error {version.metrics['holdout_error']:.4f}")
    for path in files[2:]:
        version = store.update(path)
        print(f"v{version.id} {version.status}: {version.reason}")
    accuracies = []
    for e in stream:
        test = write(out_dir / "test.npz", e.test, classes)
        predicted = store.predict(test)["prediction"].to_numpy()
        truth = np.asarray(classes)[e.test.tensors[1].numpy()]
        accuracies.append(float((predicted == truth).mean()))
    print("test accuracy per experience:", [round(a, 4) for a in accuracies])
    print(f"store average accuracy {np.mean(accuracies):.4f} "
          f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
