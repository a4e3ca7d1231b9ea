"""The Redis serving layer: its key layout, its clients and retry policy, and the writes that
fill it. The sink writes through it; the gateway, analytics and the benchmarks read (and
analytics writes its own part) through it. No service names a Redis key anywhere else."""
