"""Multi-sensor tracking: filtering, gating, association, track management, fusion, store."""
