"""The playground's static files (``static/``: HTML, ES modules and CSS, no build step), shipped
in the package; its routes are ``engine/api/playground.py``."""

from pathlib import Path

STATIC = Path(__file__).parent / "static"
