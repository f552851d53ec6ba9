"""Typed models at the gateway's boundaries."""
