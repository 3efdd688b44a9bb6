"""Bearing vibration: simulated machine types, envelope features, real recordings, streams.

- :mod:`.physics`: bearing geometry, machine types, characteristic fault frequencies.
- :mod:`.generator`: simulated windows per machine type and fault (:func:`make_dataset`).
- :mod:`.signal`: the envelope spectrum, in numpy and as a torch module.
- :mod:`.model`: :class:`VibrationCNN` (``retain.models.MODELS["vibration-cnn"]``).
- :mod:`.records`: windows saved to / loaded from ``.npz``, CSV or Parquet files.
- :mod:`.recordings`, :mod:`.cwru`, :mod:`.windows`, :mod:`.scenario`: real recordings (folder of
  CWRU files or a manifest) -> leak-free windows -> one experience per fault type, load, ...
- :mod:`.report`: plots; :mod:`.run_machines`, :mod:`.run_recordings`: ``retain run`` scenarios.

Imports scipy, pandas and matplotlib only when simulating, reading files or plotting.
"""

from retain.vibration.cwru import CWRUFile, cwru_file
from retain.vibration.generator import VibrationData, generate, make_dataset
from retain.vibration.model import VibrationCNN
from retain.vibration.physics import (
    FAULT_CLASSES,
    MACHINE_TYPES,
    Bearing,
    MachineType,
    fault_frequencies,
    get_machine,
)
from retain.vibration.recordings import Recording, RecordingSet, load_recordings
from retain.vibration.records import VibrationRecords, load_vibration, save_vibration
from retain.vibration.scenario import recordings_stream
from retain.vibration.signal import EnvelopeSpectrum, envelope_spectrum
from retain.vibration.windows import Windows, time_split

__all__ = ["FAULT_CLASSES", "MACHINE_TYPES", "Bearing", "CWRUFile", "EnvelopeSpectrum",
           "MachineType", "Recording", "RecordingSet", "VibrationCNN", "VibrationData",
           "VibrationRecords", "Windows", "cwru_file", "envelope_spectrum", "fault_frequencies",
           "generate", "get_machine", "load_recordings", "load_vibration", "make_dataset",
           "recordings_stream", "save_vibration", "time_split"]


def __getattr__(name: str):
    # plots import matplotlib: only on first use
    if name == "plot_examples":
        from retain.vibration.report import plot_examples

        return plot_examples
    raise AttributeError(f"module 'retain.vibration' has no attribute {name!r}")
