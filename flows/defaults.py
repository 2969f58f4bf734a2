"""Defaults the command line and the library share, in a module that imports nothing (``genprint --help`` reads them)."""

# Images per fingerprinting task. Each task's crops go through the network in one call; 1,024 images a
# call spread its fixed costs (the detector's trees, the parsed table) four times as far as 256 did.
DEFAULT_SHARD_SIZE = 1024
