"""What the kit's own tests hand pytester: a user's conftest building apps on the fake cloud."""

from __future__ import annotations

import textwrap

#: ``make_app(**config)`` builds an app on ``alicertify_cloud`` (``config`` wins over the fake's
#: settings); ``app`` is one with no extra configuration.
APP_CONFTEST = textwrap.dedent(
    """
    import pytest
    from flask import Flask
    from flask_alicertify import AliCertify

    @pytest.fixture
    def make_app(alicertify_cloud):
        def make(**config):
            app = Flask(__name__)
            app.config.update(
                TESTING=True,
                SECRET_KEY="kit-tests",
                ALICERTIFY_ALLOW_ANONYMOUS=True,
                **alicertify_cloud.app_config,
            )
            app.config.update(config)
            AliCertify(app)
            return app
        return make

    @pytest.fixture
    def app(make_app):
        return make_app()
    """
)
