"""TLS helpers for the integration tests: certificates made with the openssl
command in a temporary folder, and a redis-server that speaks TLS on its TCP
port (its Unix socket stays plain, so the harness's own client keeps working).
"""

import subprocess
from pathlib import Path

from harness import RedisServer


def _openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{p.stderr}")


class Certs:
    """A small PKI: CAs, and certificates they sign, as PEM files in folder."""

    def __init__(self, folder):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, name):
        return str(self.dir / name)

    def _key(self, name):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", f"{name}.key", cwd=self.dir)

    def ca(self, name, cn=None):
        """A self-signed CA: NAME.crt and NAME.key."""
        self._key(name)
        _openssl("req", "-x509", "-new", "-key", f"{name}.key", "-out", f"{name}.crt",
                 "-days", "3650", "-subj", f"/CN={cn or name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        return self.path(f"{name}.crt")

    def cert(self, name, ca, cn, sans=(), days=365, client=False, usage=None):
        """NAME.crt and NAME.key signed by ca. days=-1 gives one already expired.
        usage: the extendedKeyUsage, when not the one client says."""
        self._key(name)
        _openssl("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}", cwd=self.dir)
        ext = ["basicConstraints=CA:FALSE",
               "extendedKeyUsage=" + (usage or ("clientAuth" if client else "serverAuth"))]
        if sans:
            ext.append("subjectAltName=" + ",".join(sans))
        (self.dir / f"{name}.ext").write_text("\n".join(ext) + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt",
                 "-CAkey", f"{ca}.key", "-CAcreateserial", "-out", f"{name}.crt",
                 "-days", str(days), "-extfile", f"{name}.ext", cwd=self.dir)
        return self.path(f"{name}.crt"), self.path(f"{name}.key")


def make_pki(folder):
    """The certificates every TLS test uses."""
    c = Certs(folder)
    c.ca("ca", "presence-reaper test CA")
    c.ca("ca2", "presence-reaper test CA 2")
    local = ("DNS:localhost", "IP:127.0.0.1")
    c.cert("server", "ca", "localhost", local)
    c.cert("expired", "ca", "localhost", local, days=-1)
    c.cert("soon", "ca", "localhost", local, days=7)
    c.cert("other", "ca", "other.example", ("DNS:other.example",))
    c.cert("client", "ca", "reaper-client", client=True)
    c.cert("client2", "ca2", "reaper-client-2", client=True)
    return c


class TlsRedisServer(RedisServer):
    """redis-server with TLS on its TCP port (no plain TCP port), plain Unix socket."""

    def __init__(self, workdir, certs, cert="server", ca="ca", auth_clients=False,
                 extra_args=()):
        super().__init__(workdir, extra_args)
        self.certs = certs
        self.cert_name = cert
        self.ca_name = ca
        self.auth_clients = auth_clients
        self.base_args = list(extra_args)

    def _spawn(self):
        c = self.certs
        self.extra_args = self.base_args + [
            "--port", "0", "--tls-port", str(self.port),
            "--tls-cert-file", c.path(f"{self.cert_name}.crt"),
            "--tls-key-file", c.path(f"{self.cert_name}.key"),
            "--tls-ca-cert-file", c.path(f"{self.ca_name}.crt"),
            "--tls-auth-clients", "yes" if self.auth_clients else "no"]
        return super()._spawn()

    def url(self, host="127.0.0.1", scheme="rediss"):
        return f"{scheme}://{host}:{self.port}/0"
