"""Producers: camera frames (OpenCV sources -> JPEG -> ``frames``) and text lines (files followed
like ``tail -F``, or stdin -> ``TextEvent`` -> ``text``)."""
