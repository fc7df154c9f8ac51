"""Rendering only: HTML and Markdown from Jinja2 templates, terminal tables with rich."""
