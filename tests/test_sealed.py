"""One manifest reader for the three folder formats (a learner, any object's state, adapters):
each refuses a missing, corrupt, foreign or edited manifest with its own message, and a saved
folder reads back."""

import json
import re

import pytest
import torch

from retain import Learner, RetainError
from retain.checkpoint.format import read_manifest, save_learner
from retain.checkpoint.sealed import MANIFEST, content_hash
from retain.checkpoint.state import read_state_manifest, save_state
from retain.pretrained.checkpoint import read_base


def _learner(path):
    model = torch.nn.Linear(3, 2)
    save_learner(Learner(model, torch.optim.SGD(model.parameters(), lr=0.1)), path)


def _adapters(path):  # what save_adapters writes, without a base model to build
    path.mkdir()
    manifest = {"format": "retain-adapters", "format_version": 1,
                "base": {"name": "tiny", "sha256": "abc"}, "files": {}}
    manifest["content_hash"] = content_hash(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


#: (writes a folder, reads its manifest, what a missing manifest says, what a foreign one says)
FORMATS = {
    "learner": (_learner, read_manifest, "{path} is not a complete checkpoint: manifest.json "
                "is missing", "{path}/manifest.json is not a retain checkpoint manifest"),
    "state": (lambda p: save_state(p, "thing", {"w": torch.ones(2)}),
              lambda p: read_state_manifest(p, "thing"),
              "{path} holds no saved thing: manifest.json is missing",
              "{path}/manifest.json is not a retain state manifest"),
    "adapters": (_adapters, read_base, "no adapter checkpoint at {path}: manifest.json is "
                 "missing", "{path}/manifest.json is not a retain adapter checkpoint"),
}


def _refused(read, path, message):
    with pytest.raises(RetainError, match="^" + re.escape(message) + "$"):
        read(path)


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_refuses_a_bad_manifest_with_its_own_message(tmp_path, name):
    write, read, missing, foreign = FORMATS[name]
    path = tmp_path / "saved"
    write(path)
    read(path)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["created"] = "edited"
    (path / MANIFEST).write_text(json.dumps(manifest))
    _refused(read, path, f"{path}/manifest.json does not match its content hash: it was "
             "edited or is corrupt")
    (path / MANIFEST).write_text(json.dumps({**manifest, "format": "elsewhere"}))
    _refused(read, path, foreign.format(path=path))
    (path / MANIFEST).write_bytes(b'{"format": ')
    _refused(read, path, f"{path}/manifest.json is not valid JSON (truncated or corrupt)")
    (path / MANIFEST).unlink()
    _refused(read, path, missing.format(path=path))


def test_a_state_of_another_kind_or_a_newer_version_is_refused(tmp_path):
    save_state(tmp_path / "s", "thing", {"steps": 3}, version=2)
    _refused(lambda p: read_state_manifest(p, "other"), tmp_path / "s",
             f"{tmp_path}/s holds a 'thing', not a 'other'")
    _refused(lambda p: read_state_manifest(p, "thing", version=1), tmp_path / "s",
             f"{tmp_path}/s holds a thing of version 2, newer than this retain reads (1); "
             "upgrade retain")
    _refused(lambda p: read_state_manifest(p, "thing"), tmp_path / "none",
             f"no saved thing at {tmp_path}/none: it does not exist")
