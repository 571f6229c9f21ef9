"""Vigil: the command line, the deployment file and the wiring of the stages."""

__version__ = "0.1.0"
