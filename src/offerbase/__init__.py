"""Offerbase: an open-source offer decisioning server, wire-compatible with Adobe Offer
Decisioning."""

__version__ = "0.1.0"
