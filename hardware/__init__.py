"""Device adapters and the world simulator (hardware/sim)."""
