"""The activator (`lmscale gateway`): an OpenAI-compatible reverse proxy in front of models.

It holds requests for a model that has no ready backend in a bounded queue, forwards them
once one is ready, streams responses (SSE) chunk by chunk, and counts arrivals per model at
the front door. `hold` and `routes` are pure; `proxy` and `backends` do the I/O.
"""
