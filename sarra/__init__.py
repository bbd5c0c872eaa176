"""sarra: move files between organisations through AMQP brokers (v02 messages).

The package is the one core library behind every ``dd_*`` command; see STYLE in the
project docs for the module map.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
