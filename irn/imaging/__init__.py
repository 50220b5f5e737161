"""Images: checked file reading and atomic writing (:mod:`.io`), MATLAB-style resize
(:mod:`.resize`), tiled inference under a memory budget (:mod:`.tiling`)."""
