"""The declarative base every table derives from.

It lives apart from :mod:`gateway.db` so that the table modules (``gateway/*/tables.py``) need
not import the engine code that, in turn, imports them to create the schema.
"""

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
