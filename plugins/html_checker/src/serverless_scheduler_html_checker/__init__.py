"""HTML change checker plugin: tells you when a web page changes, and what changed."""
