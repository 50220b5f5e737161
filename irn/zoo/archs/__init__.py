"""One module per architecture, each defining ``ARCHITECTURE`` (an :class:`irn.zoo.architecture.Architecture`);
:mod:`irn.zoo.registry` lists them. ``_official.py`` holds what the official IRN family's three share
(their key scheme, the fast inference path)."""
