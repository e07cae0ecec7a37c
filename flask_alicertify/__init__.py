"""Alibaba Cloud ID verification (实人认证) for Flask apps behind an Alipay mini-program."""

from .records import ClientStatus
from .records import Record
from .records import Status

__all__ = ["ClientStatus", "Record", "Status"]
