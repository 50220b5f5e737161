"""Experiments on rescaling itself: adversarial resizing (:mod:`.craft`), repeated rescaling
(:mod:`.decay`), hybrid images (:mod:`.hybrid`), the test chart (:mod:`.chart`), plots
(:mod:`.plotting`)."""
