"""Dispatcher service: routes and transforms messages between bus backends, buffering to disk while a target is down."""
