"""An app that verifies its users with flask-alicertify, the way most Flask apps are built.

An app factory; Flask-SQLAlchemy with an integer-keyed ``User``; Flask-Login; Flask-Migrate;
configuration from ``FLASK_*`` environment variables; and two verification instances:

* ``certify`` (under ``/alicertify``) verifies whoever is signed in. It needs no user loader:
  with Flask-Login on the app, the extension asks Flask-Login's ``current_user``.
* ``kyc`` (under ``/kyc``, keys ``KYC_*``) verifies the identity the app already holds for the
  user, so nobody can verify somebody else's ID number. Its user loader hands over the integer
  primary key, and the identity loader receives exactly that integer.

Both keep their records in the app's own database, in tables that are part of ``db.metadata``:
``flask db migrate`` creates them like any model's table. The app stores no verification
columns of its own; ``kyc.is_verified(user.id)`` and ``@kyc.verified_required`` answer from the
records.
"""

from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import Flask
from flask import jsonify
from flask_login import LoginManager
from flask_login import UserMixin
from flask_login import current_user
from flask_login import login_required
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from flask_alicertify import AliCertify
from flask_alicertify import Record
from flask_alicertify import certify_failed
from flask_alicertify import certify_passed

db = SQLAlchemy()
migrate = Migrate()
login_manager = LoginManager()


def current_user_id() -> int | None:
    """The signed-in user's primary key, an ``int`` (Flask-Login's ``get_id()`` is a string)."""
    return current_user.id if current_user.is_authenticated else None


certify = AliCertify()
kyc = AliCertify(name="kyc", config_prefix="KYC_", user_loader=current_user_id)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(254), unique=True, nullable=False)
    # The identity the app already holds for its customers; protect it as your other personal data.
    legal_name = db.Column(db.String(64))
    id_number = db.Column(db.String(18))


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


@kyc.identity_loader
def load_identity(user_id: int) -> tuple[str, str] | None:
    """What ``kyc`` verifies for this user; None lets the client say (this app never does)."""
    user = db.session.get(User, user_id)
    if user is None or not user.legal_name or not user.id_number:
        return None
    return user.legal_name, user.id_number


main = Blueprint("main", __name__)


@main.get("/")
def index() -> str:
    return "Welcome"


@main.get("/me")
@login_required
def me() -> Any:
    return jsonify(id=current_user.id, verified=kyc.is_verified(current_user.id))


@main.post("/payouts")
@kyc.verified_required
def payouts() -> Any:
    """Only users who passed the identity check may withdraw money."""
    return jsonify(ok=True)


def page_not_found(error: Exception) -> tuple[str, int]:
    return "<h1>Nothing here</h1>", 404


def log_outcome(app: Flask, record: Record, extension: AliCertify, **extra: Any) -> None:
    """One audit line per verdict; ``extension.name`` says which check it was."""
    app.logger.info("%s check of user %s: %s", extension.name, record.user_id, record.status)


def create_app(config: Mapping[str, Any] | None = None, *, instance_path: str | None = None) -> Flask:
    app = Flask(__name__, instance_path=instance_path)
    # FLASK_SECRET_KEY, FLASK_SQLALCHEMY_DATABASE_URI, FLASK_ALICERTIFY_SCENE_ID, FLASK_KYC_URL_PREFIX...
    app.config.from_prefixed_env()
    app.config.update(config or {})

    db.init_app(app)
    migrate.init_app(app, db)
    login_manager.init_app(app)
    certify.init_app(app)
    kyc.init_app(app)

    app.register_blueprint(main)
    app.register_error_handler(404, page_not_found)
    certify_passed.connect(log_outcome, app)
    certify_failed.connect(log_outcome, app)
    return app
