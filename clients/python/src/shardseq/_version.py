# Stamped by clients/version.py --write from the release tag (vX.Y.Z gives
# X.Y.Z); an untagged checkout carries the development version below.
__version__ = "0.0.0.dev0"
