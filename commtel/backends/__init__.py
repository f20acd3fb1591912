"""Connections shared by several components: Redis clients, SQL engines, the SQL store.

Private: each component's public package exposes what users configure.
"""
