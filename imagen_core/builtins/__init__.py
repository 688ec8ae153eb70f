"""Plugins that ship inside imagen-core. They register through the same hooks as
third-party plugins, so each can be blocked (IMAGEN_DISABLE_PLUGINS) or outdone."""
