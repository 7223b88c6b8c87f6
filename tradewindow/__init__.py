"""Trade Window: an international trade single window for free-trade zones."""

__version__ = "0.1.0"
