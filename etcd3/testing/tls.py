"""Throwaway TLS certificates (a CA, a server and a client certificate) for tests."""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from typing import Any, List, Optional, Tuple

from .cleanup import register, unregister
from .ports import LOOPBACK


class TLSConfig:
    """A throwaway CA with a server and a client certificate, for TLS tests.

    Creating it writes PEM files into a temporary directory (or *directory*):
    ``ca_cert``, ``server_cert``, ``server_key``, ``client_cert`` and
    ``client_key`` are their paths. The server certificate is valid for
    ``127.0.0.1`` and ``localhost``. With ``client_cert_auth=True`` servers
    using this config require client certificates signed by the CA
    (``--client-cert-auth``); the client certificate's common name is
    *client_common_name* (etcd uses it as the user name when auth is on).

    Use it as a context manager, or call :meth:`cleanup`, to remove the files;
    they are also removed at interpreter exit.

    Raises ``ImportError`` if the ``cryptography`` package is missing.
    """

    def __init__(
        self,
        *,
        client_cert_auth: bool = True,
        client_common_name: str = "etcd3-test-client",
        directory: Optional[str] = None,
        valid_days: int = 7,
    ) -> None:
        self.client_cert_auth = client_cert_auth
        self.client_common_name = client_common_name
        self._owns_dir = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="etcd3-tls-")
        os.makedirs(self.directory, exist_ok=True)
        self.ca_cert = os.path.join(self.directory, "ca.crt")
        self.server_cert = os.path.join(self.directory, "server.crt")
        self.server_key = os.path.join(self.directory, "server.key")
        self.client_cert = os.path.join(self.directory, "client.crt")
        self.client_key = os.path.join(self.directory, "client.key")
        if self._owns_dir:
            register(self)
        try:
            self._generate(valid_days)
        except BaseException:
            self.cleanup()
            raise

    def _generate(self, valid_days: int) -> None:
        import datetime
        import ipaddress

        try:
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        except ImportError as exc:  # pragma: no cover
            raise ImportError(
                "TLSConfig needs the 'cryptography' package: pip install cryptography"
            ) from exc

        now = datetime.datetime.now(datetime.timezone.utc)
        start = now - datetime.timedelta(hours=1)
        end = now + datetime.timedelta(days=valid_days)

        def name(cn: str) -> x509.Name:
            return x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "etcd3 testing"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )

        def write_key(key: Any, path: str) -> None:
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)

        def write_cert(cert: Any, path: str) -> None:
            with open(path, "wb") as f:
                f.write(cert.public_bytes(serialization.Encoding.PEM))

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = name("etcd3 testing CA")
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_cert(ca, self.ca_cert)

        def leaf(cn: str, server: bool) -> Tuple[Any, Any]:
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (
                x509.CertificateBuilder()
                .subject_name(name(cn))
                .issuer_name(ca_name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start)
                .not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                # etcd's embedded gateway dials the server with the server
                # certificate, so it needs clientAuth as well.
                .add_extension(
                    x509.ExtendedKeyUsage(
                        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                        if server
                        else [ExtendedKeyUsageOID.CLIENT_AUTH]
                    ),
                    False,
                )
            )
            if server:
                builder = builder.add_extension(
                    x509.SubjectAlternativeName(
                        [
                            x509.DNSName("localhost"),
                            x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                        ]
                    ),
                    False,
                )
            return key, builder.sign(ca_key, hashes.SHA256())

        key, cert = leaf("localhost", server=True)
        write_key(key, self.server_key)
        write_cert(cert, self.server_cert)
        key, cert = leaf(self.client_common_name, server=False)
        write_key(key, self.client_key)
        write_cert(cert, self.client_cert)

    def ssl_context(self) -> ssl.SSLContext:
        """An :class:`ssl.SSLContext` trusting the CA and presenting the client cert."""
        ctx = ssl.create_default_context(cafile=self.ca_cert)
        ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx

    def server_args(self) -> List[str]:
        """The etcd flags serving client traffic with this config."""
        args = ["--cert-file=" + self.server_cert, "--key-file=" + self.server_key]
        if self.client_cert_auth:
            args += ["--client-cert-auth", "--trusted-ca-file=" + self.ca_cert]
        return args

    def etcdctl_args(self) -> List[str]:
        """The etcdctl flags talking to a server using this config."""
        return [
            "--cacert=" + self.ca_cert,
            "--cert=" + self.client_cert,
            "--key=" + self.client_key,
        ]

    def cleanup(self) -> None:
        """Remove the generated files (only if the directory was created here)."""
        if self._owns_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
            unregister(self)

    _emergency_cleanup = cleanup

    def __enter__(self) -> TLSConfig:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return (f"TLSConfig(directory={self.directory!r}, "
                f"client_cert_auth={self.client_cert_auth!r})")
