"""Test tools: a loopback ProZorro-shaped API server (replay_server) for end-to-end tests, benchmarks and demos."""
