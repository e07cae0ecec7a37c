"""Suite-wide setup.

The kit and docs tests run user suites in-process with ``pytester``, which removes every module
first imported during an inner run when that run ends. If Flask or the extension were first
imported inside one inner run, the next run would import a fresh ``flask`` while the cached
``flask_alicertify`` package still held the old one, and views would look up ``current_app`` in
the wrong module. Importing both here, once, keeps them in the snapshot.
"""

import flask  # noqa: F401

import flask_alicertify.extension  # noqa: F401
