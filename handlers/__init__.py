"""SCF entry modules: each exposes ``main_handler(event, context)``."""
