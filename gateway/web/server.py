"""Starting the console, or refusing to.

The console shows audit trails and can release quarantined instances, so it is never served
in clear beyond this machine and never without accounts (nor takes instances over STOW-RS
from anyone but ``web.stow.senders``): off loopback it needs its own TLS
certificate (``web.tls_cert_file``/``tls_key_file``) or ``web.behind_proxy`` (a TLS-terminating
reverse proxy in front, which the site vouches for), and it always needs a users file with at
least one account (``deid-gateway users add``).
"""

from __future__ import annotations

from gateway.addresses import is_loopback
from gateway.config import ConfigError
from gateway.keys import check_private
from gateway.web.config import WebConfig
from gateway.web.users import UserStore


class ExposureError(ConfigError):
    """The console would be reachable in an unsafe way; the message says what to set."""


def check_exposure(web: WebConfig, users: UserStore) -> None:
    """Raise :class:`ExposureError` unless the console may start as configured."""
    if not is_loopback(web.host) and web.tls_cert_file is None and not web.behind_proxy:
        raise ExposureError(
            f"web.host {web.host} is not a loopback address: give the console TLS "
            "(web.tls_cert_file and web.tls_key_file) or, behind a TLS-terminating reverse proxy, "
            "set web.behind_proxy: true")
    if web.tls_key_file is not None:
        check_private(web.tls_key_file, "web.tls_key_file")
    if not users.names() and not web.oidc.enabled:
        raise ExposureError(
            f"the console has no accounts ({users.path} is missing or empty): add one with "
            "'deid-gateway users add NAME --role admin', or sign users on through web.oidc")


def make_server(config, db, secret: bytes):
    """A uvicorn server for the console, after :func:`check_exposure`."""
    import uvicorn

    from gateway.web.app import create_app

    web = config.web
    users = UserStore(web.users_path(config.storage.root))
    check_exposure(web, users)
    options = {"host": web.host, "port": web.port, "log_level": "warning", "access_log": False}
    if web.tls_cert_file is not None:
        options.update(ssl_certfile=str(web.tls_cert_file), ssl_keyfile=str(web.tls_key_file))
    if web.stow.client_ca_file is not None:  # STOW-RS senders may present certificates
        from gateway.web.tlspeer import CertificateH11Protocol, server_context

        context = server_context(web)
        options.update(ssl_context_factory=lambda _config, _default: context, http=CertificateH11Protocol)
    if web.behind_proxy:
        options.update(proxy_headers=True, forwarded_allow_ips=",".join(web.proxy_addresses))
    else:
        options.update(proxy_headers=False)
    return uvicorn.Server(uvicorn.Config(create_app(config, db, secret, users), **options))
