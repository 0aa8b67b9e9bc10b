"""cutout: cuts garments out of studio photos.

The shared package: model, preprocessing, metrics, storage, database schema, config and CLI.
Services (worker/, producer/, trainer/) import it; it never imports them.
"""

__version__ = "0.1.0"
