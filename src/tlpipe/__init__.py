"""tlpipe: small labelled dataset in, verified production classifier out, by transfer learning."""

__version__ = "0.1.0"
