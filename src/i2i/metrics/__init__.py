"""Metrics: how good a translation or a generated set is.

``names`` lists them; ``paired`` compares outputs with ground truth; ``features`` and
``distribution`` compare sets; ``scorer`` accumulates both batch by batch; ``evaluate`` runs a
checkpoint or two folders through it (``i2i evaluate``). Nothing is imported here, so that the
CLI starts fast.
"""
