"""How long to wait between polls and retries: imagen_core.remote's Pacing, which
imagen-replicate's defaults are (re-exported here for the tests and callers that
import it from this module)."""

from __future__ import annotations

from imagen_core.remote import Pacing, retry_after_s

__all__ = ["Pacing", "retry_after_s"]
