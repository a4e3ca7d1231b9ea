"""Online learning: prequential evaluation on ``labels.text``, an incrementally trained
challenger, drift detection, promotion through the model store and ``models.updates``.

See docs/online-learning.md.
"""
