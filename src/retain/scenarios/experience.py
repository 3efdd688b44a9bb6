"""What a stream is made of: experiences, each a train set and a test set."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from torch.utils.data import Dataset


@dataclass
class Experience:
    """One step of a stream: the data to learn now and the data to test it on later.

    ``task_label`` is set in task-incremental scenarios (then every sample also carries it as a
    third tensor); ``classes`` lists the labels present, when known.
    """

    train: Dataset
    test: Dataset | None = None
    index: int = 0
    task_label: int | None = None
    classes: tuple[int, ...] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"experience {self.index}"


@dataclass
class Stream(Sequence):
    """An ordered list of experiences with what the learner needs to know about them."""

    experiences: list[Experience]
    name: str = "stream"
    n_classes: int | None = None
    #: for task-incremental streams: the classes of each task (multi-head by masking)
    task_classes: list[tuple[int, ...]] | None = None
    info: dict = field(default_factory=dict)

    def __getitem__(self, i):
        return self.experiences[i]

    def __len__(self) -> int:
        return len(self.experiences)

    def __iter__(self) -> Iterator[Experience]:
        return iter(self.experiences)

    @property
    def test_sets(self) -> list[Dataset]:
        return [e.test for e in self.experiences]


def make_stream(pairs: Sequence[tuple[Dataset, Dataset]], name: str, **kwargs) -> Stream:
    experiences = [Experience(train, test, index=i) for i, (train, test) in enumerate(pairs)]
    return Stream(experiences, name=name, **kwargs)
