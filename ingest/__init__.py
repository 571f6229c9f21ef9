"""Wire messages, their validation and quarantine, and the message bus.

``ingest`` knows no device, algorithm or user: it defines what travels between stages and
how it travels.
"""
