"""Device adapters and the world simulator (``vigil.sim``).

Adapters turn a device's output into wire messages (:mod:`vigil.ingest.schema`); the simulator
makes every feed the real devices would, plus the ground truth to score against.
"""
