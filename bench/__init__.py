"""Benchmarks of the consumer on the local Kafka and Cassandra: ``python -m bench``."""
