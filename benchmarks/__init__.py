"""irn's benchmarks and measurement scripts (not part of the installed ``irn`` package).

``benchmarks/run.py`` is the command line of the speed and memory table (issue 7); each of its
sections is a module here:

    common.py        the table row, the models measured, interleaved timing, ratios, the table
    inference.py     ``inference`` (in this process) and ``whole`` (one fresh process per run)
    training.py      ``training``: the training step, channels-last, DDP over CPU processes
    gpu.py           ``gpu``: the trainer's GPU recipes through ``irn train``
    data.py          ``data``: training patches per second through a DataLoader
    tiling.py        ``tiling``: tiled against whole-image PSNR by overlap
    paper_anchor.py  the paper's own code as the in-run anchor (``--paper-code``)

The other scripts (``ship_model.py``, ``train_quick.py``, ``background_train.py``,
``craft_bench.py``, ``hybrid_bench.py``) are commands of their own. Every command runs by path
(``python benchmarks/run.py ...``: it puts the repository root first on ``sys.path``) or as a
module from the repository root (``python -m benchmarks.run ...``); they import each other as
``benchmarks.<module>``.
"""
