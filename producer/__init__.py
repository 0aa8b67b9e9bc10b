"""producer: watches the studio bucket, registers every new object once, enqueues new shots.

Imports neither TensorFlow nor the worker: it starts in about a second and stays small.
"""
