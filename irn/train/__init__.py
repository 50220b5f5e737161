"""Training: the typed config (:mod:`.config`), data (:mod:`.data`), the LightningModule
(:mod:`.module`), its callbacks (:mod:`.callbacks`), what the hardware decides (:mod:`.hardware`:
``precision: auto``, ``channels_last: auto``), the run (:mod:`.run`: the Trainer and the fit loop)
and the export of a checkpoint to a model file (:mod:`.export`)."""
