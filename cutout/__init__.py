"""cutout: cuts garments out of studio photos.

The shared kernel: settings, bucket naming, storage, the queue's configuration and base task,
the database, image codecs, metrics, reports, model identity, and the segmentation model
(cutout.segmentation). Services (producer/, worker/, trainer/) and the demo import it; it
never imports them.
"""

__version__ = "0.1.0"
