"""Training: the typed config (:mod:`.config`), data (:mod:`.data`) and the LightningModule,
its callbacks and the export (:mod:`.module`)."""
