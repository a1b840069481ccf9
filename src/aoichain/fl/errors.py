"""Errors of the federated-learning layer."""

from aoichain.errors import AoichainError, IntegrityError, InvalidInput


class InvalidStream(InvalidInput):
    """A sensor-stream file or folder cannot be read as a stream.

    The message names the file and what is wrong with it.
    """


class MalformedUpdate(IntegrityError):
    """A model blob does not parse, or does not fit the model it is used with."""


class BlobNotFound(AoichainError, KeyError):
    """The model store holds no blob with the requested sha256."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidPolicy(InvalidInput):
    """A privacy policy does not fit the stream it is applied to."""
