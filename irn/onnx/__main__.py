"""``python -m irn.onnx``: the ``irn-onnx`` command (:func:`irn.onnx.runtime.main`), without torch."""

import sys

from irn.onnx.runtime import main

if __name__ == "__main__":
    sys.exit(main())
