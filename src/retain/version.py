"""The version of retain, in a module of its own: the checkpoint format records it without
importing the package root (whose lazy names would make a circle)."""

__version__ = "0.1.0"
