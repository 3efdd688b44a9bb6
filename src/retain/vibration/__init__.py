"""Real vibration recordings: read them, window them without leaks, stream them.

``load_recordings`` (folder of CWRU files or a manifest) -> ``time_split`` (leak-free
windows, views of the recordings) -> ``recordings_stream`` (one experience per fault type,
load, fault size or manifest column). Imports scipy and pandas only when reading files.
"""

from retain.vibration.cwru import CWRUFile, cwru_file
from retain.vibration.recordings import Recording, RecordingSet, load_recordings
from retain.vibration.scenario import recordings_stream
from retain.vibration.windows import Windows, time_split

__all__ = ["CWRUFile", "Recording", "RecordingSet", "Windows", "cwru_file", "load_recordings",
           "recordings_stream", "time_split"]
