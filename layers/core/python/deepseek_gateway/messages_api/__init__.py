"""Anthropic's Messages API (`POST /v1/messages`) in front of the gateway's chat pipeline: the request is
translated into a chat completion request, runs through the same policy, limits, safety, routing and usage,
and the answer is translated back into a Message (or its event stream)."""
