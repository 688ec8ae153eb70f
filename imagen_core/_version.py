# Single source of the version; every distribution in this repo moves in lockstep.
__version__ = "0.1.0"
