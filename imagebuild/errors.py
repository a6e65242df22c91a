"""Errors raised while building, parsing or verifying the enclave image.

    ImageBuildError
     ├── ArchiveError            a cpio, ar, tar or wheel archive is malformed or too large
     ├── EifFormatError          an EIF file does not follow the image format
     ├── LockFileError           inputs.lock.json is missing, malformed or inconsistent
     ├── FetchError              an input could not be downloaded
     │    └── HashMismatch       an input's SHA-256 differs from the pinned one
     ├── RootfsError             the root file system cannot be assembled (clashing paths, missing files)
     ├── KernelBuildError        the kernel cannot be built: wrong toolchain, a config option lost, make failed
     └── VerificationError       a rebuild could not be run or compared
"""

from __future__ import annotations


class ImageBuildError(Exception):
    """Base class of every error in this package."""


class ArchiveError(ImageBuildError):
    """An archive is malformed, uses an unsupported feature, or exceeds a size cap."""


class EifFormatError(ImageBuildError):
    """An EIF file does not follow the image format."""


class LockFileError(ImageBuildError):
    """The input lock file is missing, malformed or inconsistent."""


class FetchError(ImageBuildError):
    """An input could not be downloaded from any of its sources."""


class HashMismatch(FetchError):
    """A downloaded or cached input does not have the pinned SHA-256."""


class RootfsError(ImageBuildError):
    """The root file system cannot be assembled."""


class KernelBuildError(ImageBuildError):
    """The enclave kernel cannot be built from its pinned source, config and toolchain."""


class VerificationError(ImageBuildError):
    """A reproducibility check could not be run."""
