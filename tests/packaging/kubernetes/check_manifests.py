#!/usr/bin/python3
"""Check the Kubernetes manifests in packaging/kubernetes/.

usage: check_manifests.py MANIFEST_DIR
environment: PRESENCE_REAPER  the built binary (required)
             KUBECTL          kubectl, for "kubectl kustomize" (optional)

Parses every manifest with yaml.safe_load_all and checks the fields that
matter concretely: the sidecar is a native one, the Deployment has two
replicas, the CronJob forbids overlap and runs --once without retries, every
presence-reaper container gets POD_NAME from the Downward API, runs non-root
with a read-only root file system and no privileges, has resources, reads its
password from the mounted Secret file that the ConfigMap's config names, and
(long-running ones) a liveness probe on /healthz.  The TLS variant
(deployment-tls.yaml, configmap-tls.yaml) speaks rediss:// and mounts the
TLS Secret read-only where its config's tls.* files point.  sentinel.yaml is
a Deployment like deployment.yaml on a ConfigMap of its own with a
redis+sentinel:// URL and the Sentinels' password from a second Secret.
Each ConfigMap's config is then run through the real binary (-t): the TLS
one with certificates made by openssl, the Sentinel one with the Sentinels
moved to closed loopback ports, where it must ask each of them.

Then it breaks the parsed manifests on purpose, one way at a time, and makes
sure each break is reported: the checks above cannot pass vacuously.
"""
import copy
import os
import re
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

IMAGE = "presence-reaper:latest"
CONFIG_KEY = "presence-reaper.conf"
CONFIGMAP = "presence-reaper"
SECRET = "presence-reaper-redis"
SECRET_KEY = "password"
RUN_AS = 65532
METRICS_PORT = 9577
PLACEHOLDER = "CHANGE-ME"
CONFIGMAP_TLS = "presence-reaper-tls"
SECRET_TLS = "presence-reaper-redis-tls"
# tls.* setting -> key in the TLS Secret (a cert-manager Certificate's keys)
TLS_FILES = {"ca_file": "ca.crt", "cert_file": "tls.crt", "key_file": "tls.key"}

# Which kinds each file must hold.
EXPECTED = {
    "configmap.yaml": ["ConfigMap"],
    "secret.example.yaml": ["Secret"],
    "deployment.yaml": ["Deployment"],
    "configmap-tls.yaml": ["ConfigMap"],
    "secret-tls.example.yaml": ["Secret"],
    "deployment-tls.yaml": ["Deployment"],
    "sidecar.yaml": ["Deployment"],
    "cronjob.yaml": ["CronJob"],
    "kustomization.yaml": ["Kustomization"],
    "sentinel.yaml": ["ConfigMap", "Deployment"],
    "sharded.yaml": ["ConfigMap", "Deployment"],
}
SENTINEL_CONFIGMAP = "presence-reaper-sentinel"
SENTINEL_SECRET = "presence-reaper-sentinel"
REDIS_URL_RE = r"^redis://[^/\s@]+(:\d+)?(/\d+)?$"
REDISS_URL_RE = r"^rediss://[^/\s@]+(:\d+)?(/\d+)?$"
# Two Sentinels at least (one is a single point of failure), a service, a database.
SHARDED_CONFIGMAP = "presence-reaper-sharded"
CLUSTER_URL_RE = r"^redis\+cluster://[^/\s@,]+(,[^/\s@,]+)+$"
SENTINEL_URL_RE = r"^redis\+sentinel://[^/\s@,]+(,[^/\s@,]+)+/[\w.-]+(/\d+)?$"

# core/v1 Container fields: a misspelt key (livenesProbe) is ignored by
# nothing here but rejected by the API server, so catch it now.
CONTAINER_FIELDS = {
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env",
    "resources", "resizePolicy", "restartPolicy", "volumeMounts",
    "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe",
    "lifecycle", "terminationMessagePath", "terminationMessagePolicy",
    "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
}
SECURITY_CONTEXT_FIELDS = {
    "allowPrivilegeEscalation", "appArmorProfile", "capabilities", "privileged",
    "procMount", "readOnlyRootFilesystem", "runAsGroup", "runAsNonRoot",
    "runAsUser", "seLinuxOptions", "seccompProfile", "windowsOptions",
}
# An image without a registry host or path: name:tag.
IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def load(folder):
    """{file name: [documents]} for every *.yaml in folder."""
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            with open(path, encoding="utf-8") as f:
                out[path.name] = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            sys.exit(f"FAIL\n  {path.name}: not valid YAML: {e}")
    return out


def conf_string(text, group, name):
    """Value of group.name = "..." in libconfig text (comments skipped), or None."""
    text = re.sub(r"(?m)^\s*(#|//).*$", "", text)
    m = re.search(r"(?ms)^\s*%s\s*[=:]\s*\{(.*?)^\s*\}\s*;" % group, text)
    if not m:
        return None
    v = re.search(r'(?m)^\s*%s\s*[=:]\s*"([^"]*)"\s*;' % name, m.group(1))
    return v.group(1) if v else None


def walk_images(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "image" and isinstance(v, str):
                yield v
            else:
                yield from walk_images(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_images(v)


class Checker:
    def __init__(self, manifests):
        self.m = manifests
        self.errors = []

    def err(self, where, msg):
        self.errors.append(f"{where}: {msg}")

    def docs(self, fname, kind):
        return [d for d in self.m.get(fname, []) if isinstance(d, dict) and d.get("kind") == kind]

    def one(self, fname, kind):
        found = self.docs(fname, kind)
        if len(found) != 1:
            self.err(fname, f"expected one {kind}, found {len(found)}")
            return None
        return found[0]

    # ---- the ConfigMap -------------------------------------------------

    def config_text(self, fname="configmap.yaml", name=CONFIGMAP):
        cm = self.one(fname, "ConfigMap")
        if cm is None:
            return None
        if cm.get("metadata", {}).get("name") != name:
            self.err(fname, f"ConfigMap must be named {name}")
        text = (cm.get("data") or {}).get(CONFIG_KEY)
        if not isinstance(text, str) or not text.strip():
            self.err(fname, f"data.{CONFIG_KEY} missing")
            return None
        return text

    def check_config_text(self, text, fname="configmap.yaml", url_re=REDIS_URL_RE):
        where = f"{fname} data.{CONFIG_KEY}"
        url = conf_string(text, "redis", "url")
        if url is None or not re.match(url_re, url):
            self.err(where, f"redis.url should match {url_re}, got {url!r}")
        pwfile = conf_string(text, "redis", "password_file")
        if not pwfile:
            self.err(where, "redis.password_file not set")
        if conf_string(text, "redis", "password") not in (None, ""):
            self.err(where, "a password written in the ConfigMap; use the Secret file")
        identity = conf_string(text, "leader", "identity")
        if identity not in (None, ""):
            self.err(where, f"leader.identity is {identity!r}: it must be empty "
                     "so that POD_NAME names the instance")
        listen = conf_string(text, "metrics", "listen")
        if listen != f"0.0.0.0:{METRICS_PORT}":
            self.err(where, f"metrics.listen should be \"0.0.0.0:{METRICS_PORT}\", got {listen!r}")
        return pwfile

    # ---- the Secret ----------------------------------------------------

    def check_secret(self, fname="secret.example.yaml", name=SECRET, keys=(SECRET_KEY,)):
        s = self.one(fname, "Secret")
        if s is None:
            return
        if s.get("metadata", {}).get("name") != name:
            self.err(fname, f"Secret must be named {name}")
        if "data" in s:
            self.err(fname, "use stringData with the placeholder, not data")
        for key in keys:
            value = (s.get("stringData") or {}).get(key)
            if value != PLACEHOLDER:
                self.err(fname, f"stringData.{key} must be the placeholder {PLACEHOLDER}, "
                         f"got {value!r}")

    # ---- pods ----------------------------------------------------------

    def check_pod(self, where, pod, container, pwfile, long_running, configmap=CONFIGMAP,
                  cpu="10m", memory="32Mi"):
        sc_pod = pod.get("securityContext") or {}
        name = container.get("name", "?")
        w = f"{where} container {name}"

        unknown = set(container) - CONTAINER_FIELDS
        if unknown:
            self.err(w, f"unknown container fields {sorted(unknown)}")
        if container.get("image") != IMAGE:
            self.err(w, f"image should be {IMAGE}, got {container.get('image')!r}")

        grace = pod.get("terminationGracePeriodSeconds")
        if not isinstance(grace, int) or grace < 5:
            self.err(where, f"terminationGracePeriodSeconds should be set and >= 5, got {grace!r}")

        env = {e.get("name"): e for e in container.get("env") or []}
        ref = ((env.get("POD_NAME") or {}).get("valueFrom") or {}).get("fieldRef") or {}
        if ref.get("fieldPath") != "metadata.name":
            self.err(w, "POD_NAME must come from fieldRef metadata.name")

        # securityContext, on the container itself.
        sc = container.get("securityContext") or {}
        unknown = set(sc) - SECURITY_CONTEXT_FIELDS
        if unknown:
            self.err(w, f"unknown securityContext fields {sorted(unknown)}")
        want = {"runAsNonRoot": True, "runAsUser": RUN_AS,
                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
        for k, v in want.items():
            if type(sc.get(k)) is not type(v) or sc.get(k) != v:
                self.err(w, f"securityContext.{k} should be {v!r}, got {sc.get(k)!r}")
        if sc.get("privileged"):
            self.err(w, "securityContext.privileged")
        caps = sc.get("capabilities") or {}
        if caps.get("drop") != ["ALL"] or caps.get("add"):
            self.err(w, f"capabilities should drop ALL and add nothing, got {caps!r}")
        if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            self.err(w, "securityContext.seccompProfile.type should be RuntimeDefault")
        for k in ("runAsUser", "runAsGroup"):
            if k in sc_pod and sc_pod[k] == 0 and k not in sc:
                self.err(where, f"pod securityContext.{k} is 0")

        # resources
        res = container.get("resources") or {}
        req = res.get("requests") or {}
        if req.get("cpu") != cpu or not req.get("memory"):
            self.err(w, f"resources.requests should have cpu {cpu} and a memory, got {req!r}")
        if (res.get("limits") or {}).get("memory") != memory:
            self.err(w, f"resources.limits.memory should be {memory}, got {res.get('limits')!r}")

        # volumes: the ConfigMap and the Secret, mounted read-only
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        mounts = container.get("volumeMounts") or []
        conf_path = secret_path = None
        secret_mode = None
        for mnt in mounts:
            vol = volumes.get(mnt.get("name"))
            if vol is None:
                self.err(w, f"volumeMount {mnt.get('name')!r} has no volume")
                continue
            path = mnt.get("mountPath", "").rstrip("/")
            if "configMap" in vol and vol["configMap"].get("name") == configmap:
                items = vol["configMap"].get("items")
                rel = CONFIG_KEY
                if items:
                    rel = next((i["path"] for i in items if i.get("key") == CONFIG_KEY), None)
                if rel:
                    conf_path = f"{path}/{rel}"
            elif "secret" in vol and vol["secret"].get("secretName") == SECRET:
                items = vol["secret"].get("items")
                rel = SECRET_KEY
                item = {}
                if items:
                    item = next((i for i in items if i.get("key") == SECRET_KEY), {})
                    rel = item.get("path")
                if rel:
                    secret_path = f"{path}/{rel}"
                    secret_mode = item.get("mode", vol["secret"].get("defaultMode", 0o644))
            else:
                continue
            if mnt.get("readOnly") is not True:
                self.err(w, f"volumeMount {mnt.get('name')} should be readOnly")
            if mnt.get("subPath"):
                self.err(w, f"volumeMount {mnt.get('name')}: subPath mounts never see updates")
        if conf_path is None:
            self.err(w, f"the ConfigMap {configmap} is not mounted")
        if secret_path is None:
            self.err(w, f"the Secret {SECRET} is not mounted as a file")
        elif pwfile and secret_path != pwfile:
            self.err(w, f"Secret file is {secret_path} but redis.password_file is {pwfile}")
        if secret_mode is not None:
            readable = bool(secret_mode & stat.S_IROTH) or (
                bool(secret_mode & stat.S_IRGRP) and sc_pod.get("fsGroup") == RUN_AS)
            if not readable:
                self.err(w, f"the Secret file (mode {secret_mode:o}) is not readable by uid {RUN_AS}")

        args = container.get("args") or []
        if "-c" not in args or args.index("-c") + 1 >= len(args):
            self.err(w, f"args should name the config file with -c, got {args!r}")
        elif conf_path and args[args.index("-c") + 1] != conf_path:
            self.err(w, f"-c {args[args.index('-c') + 1]} but the ConfigMap is mounted at {conf_path}")
        if container.get("command"):
            self.err(w, "command overrides the image's ENTRYPOINT; use args")

        ports = {p.get("name"): p for p in container.get("ports") or []}
        probe = container.get("livenessProbe")
        if long_running:
            if (ports.get("metrics") or {}).get("containerPort") != METRICS_PORT:
                self.err(w, f"a port named metrics = {METRICS_PORT} is needed")
            get = (probe or {}).get("httpGet") or {}
            if get.get("path") != "/healthz" or get.get("port") not in ("metrics", METRICS_PORT):
                self.err(w, f"livenessProbe should be httpGet /healthz on port metrics, got {probe!r}")
        return args

    def pod_of(self, workload):
        return (((workload.get("spec") or {}).get("template") or {}).get("spec")) or {}

    def check_deployment(self, pwfile, fname="deployment.yaml", configmap=CONFIGMAP):
        """The Deployment's pod and its presence-reaper container, or None."""
        d = self.one(fname, "Deployment")
        if d is None:
            return None
        spec = d.get("spec") or {}
        if spec.get("replicas") != 2:
            self.err(fname, f"replicas should be 2, got {spec.get('replicas')!r}")
        self.check_selector(fname, d)
        pod = self.pod_of(d)
        if pod.get("automountServiceAccountToken") is not False:
            self.err(fname, "automountServiceAccountToken should be false")
        cs = [c for c in pod.get("containers") or [] if c.get("image") == IMAGE]
        if len(cs) != 1:
            self.err(fname, f"expected one {IMAGE} container, found {len(cs)}")
            return None
        c = cs[0]
        self.check_pod(fname, pod, c, pwfile, long_running=True, configmap=configmap)
        rp = c.get("readinessProbe")
        if rp is not None and (rp.get("httpGet") or {}).get("path") != "/readyz":
            self.err(fname, "readinessProbe, if any, should be /readyz")
        return pod, c

    # ---- the TLS variant -----------------------------------------------

    def tls_mount(self, pod, container):
        """(folder, {key: mode}) where the TLS Secret is mounted, or None."""
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for mnt in container.get("volumeMounts") or []:
            sec = (volumes.get(mnt.get("name")) or {}).get("secret") or {}
            if sec.get("secretName") != SECRET_TLS:
                continue
            if mnt.get("readOnly") is not True:
                self.err("deployment-tls.yaml", "the TLS Secret should be mounted readOnly")
            if mnt.get("subPath"):
                self.err("deployment-tls.yaml", "the TLS Secret as a subPath mount never "
                         "sees renewed certificates")
            items = sec.get("items")
            default = sec.get("defaultMode", 0o644)
            modes = ({i.get("key"): i.get("mode", default) for i in items} if items else
                     {k: default for k in TLS_FILES.values()})
            return mnt.get("mountPath", "").rstrip("/"), modes
        return None

    def check_tls(self):
        text = self.config_text("configmap-tls.yaml", CONFIGMAP_TLS)
        if text is None:
            return None
        pwfile = self.check_config_text(text, "configmap-tls.yaml", REDISS_URL_RE)
        got = self.check_deployment(pwfile, "deployment-tls.yaml", CONFIGMAP_TLS)
        self.check_secret("secret-tls.example.yaml", SECRET_TLS, tuple(TLS_FILES.values()))
        if got is None:
            return text
        pod, c = got
        mount = self.tls_mount(pod, c)
        if mount is None:
            self.err("deployment-tls.yaml", f"the Secret {SECRET_TLS} is not mounted")
            return text
        folder, modes = mount
        for setting, key in TLS_FILES.items():
            path = conf_string(text, "tls", setting)
            if path != f"{folder}/{key}":
                self.err("configmap-tls.yaml", f"tls.{setting} is {path!r}, but the Secret's "
                         f"{key} is mounted at {folder}/{key}")
            mode = modes.get(key)
            if mode is None or not (mode & stat.S_IROTH or (
                    mode & stat.S_IRGRP and (pod.get("securityContext") or {})
                    .get("fsGroup") == RUN_AS)):
                self.err("deployment-tls.yaml", f"{key} of {SECRET_TLS} is not readable "
                         f"by uid {RUN_AS}")
            elif key == "tls.key" and mode & stat.S_IROTH:
                self.err("deployment-tls.yaml", "the client key is readable by everyone")
        return text

    def check_sidecar(self, pwfile):
        d = self.one("sidecar.yaml", "Deployment")
        if d is None:
            return
        self.check_selector("sidecar.yaml", d)
        pod = self.pod_of(d)
        if any(c.get("image") == IMAGE for c in pod.get("containers") or []):
            self.err("sidecar.yaml", "presence-reaper should be an init container, not in containers")
        if not pod.get("containers"):
            self.err("sidecar.yaml", "no main (realtime server) container")
        cs = [c for c in pod.get("initContainers") or [] if c.get("image") == IMAGE]
        if len(cs) != 1:
            self.err("sidecar.yaml", f"expected one {IMAGE} init container, found {len(cs)}")
            return
        c = cs[0]
        if c.get("restartPolicy") != "Always":
            self.err("sidecar.yaml", "the init container needs restartPolicy: Always "
                     "(a native sidecar)")
        if "readinessProbe" in c:
            self.err("sidecar.yaml", "no readinessProbe on the sidecar: "
                     "a Redis outage would make the realtime pod unready")
        self.check_pod("sidecar.yaml", pod, c, pwfile, long_running=True)

    def check_cronjob(self, pwfile):
        cj = self.one("cronjob.yaml", "CronJob")
        if cj is None:
            return
        spec = cj.get("spec") or {}
        if spec.get("concurrencyPolicy") != "Forbid":
            self.err("cronjob.yaml", "concurrencyPolicy should be Forbid")
        if not isinstance(spec.get("schedule"), str) or len(spec["schedule"].split()) != 5:
            self.err("cronjob.yaml", f"schedule should be a 5-field cron line, got {spec.get('schedule')!r}")
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        if job.get("backoffLimit") != 0:
            self.err("cronjob.yaml", f"backoffLimit should be 0, got {job.get('backoffLimit')!r}")
        pod = ((job.get("template") or {}).get("spec")) or {}
        if pod.get("restartPolicy") != "Never":
            self.err("cronjob.yaml", f"restartPolicy should be Never, got {pod.get('restartPolicy')!r}")
        if pod.get("automountServiceAccountToken") is not False:
            self.err("cronjob.yaml", "automountServiceAccountToken should be false")
        cs = [c for c in pod.get("containers") or [] if c.get("image") == IMAGE]
        if len(cs) != 1:
            self.err("cronjob.yaml", f"expected one {IMAGE} container, found {len(cs)}")
            return
        args = self.check_pod("cronjob.yaml", pod, cs[0], pwfile, long_running=False)
        if "--once" not in args:
            self.err("cronjob.yaml", f"args should contain --once, got {args!r}")
        for bad in ("-n", "--dry-run"):
            if bad in args:
                self.err("cronjob.yaml", f"{bad} in args: the CronJob would never remove anything")

    def check_selector(self, fname, d):
        sel = (((d.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
        labels = ((((d.get("spec") or {}).get("template") or {}).get("metadata") or {})
                  .get("labels")) or {}
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            self.err(fname, "spec.selector.matchLabels must match the pod template's labels")

    # ---- files, kinds, images, kustomization -----------------------------

    def check_files(self):
        for fname, kinds in EXPECTED.items():
            if fname not in self.m:
                self.err(fname, "missing")
                continue
            got = [d.get("kind") for d in self.m[fname] if isinstance(d, dict)]
            if sorted(got) != sorted(kinds):
                self.err(fname, f"kinds {got}, expected {kinds}")
        for fname, docs in self.m.items():
            if fname not in EXPECTED:
                self.err(fname, "not a known manifest (add it to EXPECTED in this test)")
            for d in docs:
                if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind"):
                    self.err(fname, "a document without apiVersion and kind")
                for img in walk_images(d):
                    if not IMAGE_RE.match(img):
                        self.err(fname, f"image {img!r}: name:tag only, no registry host or path")

    def check_kustomization(self, folder_files):
        k = self.one("kustomization.yaml", "Kustomization")
        if k is None:
            return
        res = k.get("resources") or []
        for r in res:
            if r not in folder_files:
                self.err("kustomization.yaml", f"resource {r} does not exist")
        if "configmap.yaml" not in res:
            self.err("kustomization.yaml", "configmap.yaml is not a resource")
        for example in ("secret.example.yaml", "secret-tls.example.yaml"):
            if example in res:
                self.err("kustomization.yaml", f"{example} is a resource: kubectl apply -k "
                         "would overwrite the real Secret with the placeholder")
        if not any(r in res for r in ("deployment.yaml", "cronjob.yaml")):
            self.err("kustomization.yaml", "lists neither deployment.yaml nor cronjob.yaml")
        for img in k.get("images") or []:
            if "newName" in img and "/" in str(img["newName"]):
                self.err("kustomization.yaml", "images: no registry in the shipped file")

    def check_sentinel(self):
        """sentinel.yaml: a Deployment like deployment.yaml on a redis+sentinel:// config."""
        text = self.config_text("sentinel.yaml", SENTINEL_CONFIGMAP)
        if text is None:
            return
        pwfile = self.check_config_text(text, "sentinel.yaml", SENTINEL_URL_RE)
        spw = conf_string(text, "sentinel", "password_file")
        if conf_string(text, "sentinel", "password") not in (None, ""):
            self.err("sentinel.yaml", "a Sentinel password written in the ConfigMap; use the Secret")
        found = self.check_own_deployment("sentinel.yaml", 2, pwfile, SENTINEL_CONFIGMAP)
        if found is None:
            return
        pod, c = found
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        mounted = [m.get("mountPath", "").rstrip("/") + "/password"
                   for m in c.get("volumeMounts") or []
                   if ((volumes.get(m.get("name")) or {}).get("secret") or {}).get("secretName")
                   == SENTINEL_SECRET and m.get("readOnly") is True]
        if not spw or mounted != [spw]:
            self.err("sentinel.yaml", f"sentinel.password_file {spw!r} should be the Secret "
                     f"{SENTINEL_SECRET} mounted read-only, found {mounted}")

    def check_sharded(self):
        """sharded.yaml: three replicas sharing 16 shards on a redis+cluster:// config."""
        text = self.config_text("sharded.yaml", SHARDED_CONFIGMAP)
        if text is None:
            return
        pwfile = self.check_config_text(text, "sharded.yaml", CLUSTER_URL_RE)
        if not re.search(r"^\s*shards = 16;", text, re.M):
            self.err("sharded.yaml", "keys.shards should be 16")
        for group, name in (("keys", "online_set"), ("keys", "socket_prefix"), ("leader", "key")):
            if "{<shard>}" not in (conf_string(text, group, name) or ""):
                self.err("sharded.yaml", f"{group}.{name} should hold the hash tag {{<shard>}}")
        # A thread and a connection per shard held: a larger budget.
        self.check_own_deployment("sharded.yaml", 3, pwfile, SHARDED_CONFIGMAP, cpu="50m",
                                  memory="64Mi")

    def check_own_deployment(self, fname, replicas, pwfile, configmap, **budget):
        """fname's Deployment, like deployment.yaml on its own ConfigMap, with this many
        replicas: (pod, its presence-reaper container), or None when there is none."""
        d = self.one(fname, "Deployment")
        if d is None:
            return None
        if (d.get("spec") or {}).get("replicas") != replicas:
            self.err(fname, f"replicas should be {replicas}")
        self.check_selector(fname, d)
        pod = self.pod_of(d)
        cs = [c for c in pod.get("containers") or [] if c.get("image") == IMAGE]
        if len(cs) != 1:
            self.err(fname, f"expected one {IMAGE} container, found {len(cs)}")
            return None
        self.check_pod(fname, pod, cs[0], pwfile, long_running=True, configmap=configmap,
                       **budget)
        return pod, cs[0]

    def run(self, folder_files=None):
        folder_files = folder_files or set(self.m)
        self.check_files()
        self.check_secret()
        text = self.config_text()
        pwfile = self.check_config_text(text) if text else None
        self.check_deployment(pwfile)
        self.check_sidecar(pwfile)
        self.check_cronjob(pwfile)
        self.check_sentinel()
        self.check_sharded()
        self.check_tls()
        self.check_kustomization(folder_files)
        return self.errors


# ---- the ConfigMap's config against the real binary ----------------------

def make_tls_files(tmp):
    """A CA, and a client certificate and key it signs, as the TLS Secret holds them."""
    def ssl(*argv):
        subprocess.run(["openssl"] + list(argv), cwd=tmp, check=True, capture_output=True)
    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=k8s-check CA")
    ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=k8s-check")
    ssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tls.crt", "-days", "2")


def run_check_config(binary, config_text, pwfile, tls=False, missing=None):
    """Run presence-reaper -t on a ConfigMap's config.  Returns (errors, notes).

    With tls, the files its tls.* settings name are made with openssl first
    (all but the one named missing).
    """
    errors, notes = [], []
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PRESENCE_REAPER_") and k != "REDIS_URL"}
    env["POD_NAME"] = "k8s-check-pod"
    with tempfile.TemporaryDirectory(prefix="k8s-check.") as tmp:
        pw = Path(tmp, "password")
        pw.write_text("k8s-check-secret\n")
        pw.chmod(0o600)
        if pwfile:
            config_text = config_text.replace(f'"{pwfile}"', f'"{pw}"')
        if tls:
            make_tls_files(tmp)
            if missing:
                os.unlink(Path(tmp, missing))
            for setting, key in TLS_FILES.items():
                path = conf_string(config_text, "tls", setting)
                if path:
                    config_text = config_text.replace(f'"{path}"', f'"{tmp}/{key}"')
        conf = Path(tmp, CONFIG_KEY)
        url = "rediss://127.0.0.1:1/0" if tls else "redis://127.0.0.1:1/0"

        def t(text):
            conf.write_text(text)
            p = subprocess.run([binary, "-t", "-c", str(conf), "--redis-url", url],
                               capture_output=True, text=True, env=env, timeout=30)
            return p

        p = t(config_text)
        if p.returncode == 78:
            errs = [ln for ln in p.stderr.splitlines() if " error: " in ln
                    and "configuration invalid" not in ln]
            metrics_only = errs and all(
                re.search(r": metrics(\.\w+)?: unknown setting", ln) for ln in errs)
            if metrics_only:
                notes.append("note: this presence-reaper does not know the metrics "
                             "settings yet; checked the rest of the config without them")
                stripped = re.sub(r"(?ms)^metrics\s*[=:]\s*\{.*?^\}\s*;[ \t]*\n?", "",
                                  config_text)
                if stripped == config_text:
                    errors.append("could not remove the metrics group from the config")
                    return errors, notes
                p = t(stripped)
        if p.returncode != 0:
            errors.append(f"presence-reaper -t rejects the ConfigMap's config "
                          f"(exit {p.returncode}):\n{p.stderr}")
            return errors, notes
        out = p.stdout
        if f'password_file = "{pw}"' not in out:
            errors.append("-t output does not show the password_file from the ConfigMap")
        if 'identity = "k8s-check-pod"' not in out:
            errors.append("-t output: identity does not come from POD_NAME")
        if "k8s-check-secret" in out + p.stderr:
            errors.append("-t printed the password")
        if tls and not re.search(r"^tls = \{\n  enabled = true;", out, re.M):
            errors.append("-t output: TLS is not enabled by the TLS config")
    return errors, notes


def run_sentinel_check_config(binary, text):
    """-t on sentinel.yaml's config, its Sentinels moved to closed loopback ports."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PRESENCE_REAPER_") and k != "REDIS_URL"}
    url = conf_string(text, "redis", "url") or ""
    hosts = url.split("://", 1)[-1].split("/", 1)[0].split(",")
    local = url.split("://")[0] + "://" + ",".join("127.0.0.1:1" for _ in hosts) + "/" + \
        url.split("://", 1)[-1].split("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix="k8s-check.") as tmp:
        for group in ("redis", "sentinel"):
            pw = Path(tmp, group)
            pw.write_text(f"k8s-{group}-secret\n")
            pw.chmod(0o600)
            text = text.replace(f'"{conf_string(text, group, "password_file")}"', f'"{pw}"')
        conf = Path(tmp, CONFIG_KEY)
        conf.write_text(text.replace(url, local))
        p = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True, text=True,
                           env=env, timeout=60)
    out = p.stdout + p.stderr
    errors = []
    if p.returncode != 0:
        errors.append(f"presence-reaper -t rejects sentinel.yaml's config (exit {p.returncode}):"
                      f"\n{p.stderr}")
    elif f"# sentinels: none of {len(hosts)} answered" not in p.stdout:
        errors.append(f"sentinel.yaml: -t did not ask the {len(hosts)} Sentinels:\n{p.stdout}")
    if "# sentinel password: set (redacted)" not in p.stdout:
        errors.append("sentinel.yaml: -t shows no Sentinel password from the Secret file")
    if "k8s-redis-secret" in out or "k8s-sentinel-secret" in out:
        errors.append("sentinel.yaml: -t printed a password")
    return errors


def run_sharded_check_config(binary, text):
    """-t on sharded.yaml's config, its seeds moved to closed loopback ports: one line a shard."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PRESENCE_REAPER_") and k != "REDIS_URL"}
    url = conf_string(text, "redis", "url") or ""
    seeds = url.split("://", 1)[-1].split(",")
    local = url.split("://")[0] + "://" + ",".join("127.0.0.1:1" for _ in seeds)
    with tempfile.TemporaryDirectory(prefix="k8s-check.") as tmp:
        pw = Path(tmp, "password")
        pw.write_text("k8s-sharded-secret\n")
        pw.chmod(0o600)
        text = text.replace(f'"{conf_string(text, "redis", "password_file")}"', f'"{pw}"')
        conf = Path(tmp, CONFIG_KEY)
        conf.write_text(text.replace(url, local))
        p = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True, text=True,
                           env=env, timeout=60)
    if p.returncode != 0:
        return [f"presence-reaper -t rejects sharded.yaml's config (exit {p.returncode}):"
                f"\n{p.stderr}"]
    lines = re.findall(r"(?m)^# shard (\d+): slot \d+, ", p.stdout)
    if lines != [str(i) for i in range(16)]:
        return [f"sharded.yaml: -t does not list the 16 shards with their slots:\n{p.stdout}"]
    if "k8s-sharded-secret" in p.stdout + p.stderr:
        return ["sharded.yaml: -t printed the password"]
    return []


def run_kustomize(kubectl, folder):
    """kubectl kustomize renders, holds no Secret, and only name:tag images."""
    p = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        return [f"kubectl kustomize failed:\n{p.stderr}"]
    errors = []
    docs = [d for d in yaml.safe_load_all(p.stdout) if d]
    kinds = sorted(d["kind"] for d in docs)
    if "ConfigMap" not in kinds:
        errors.append(f"kustomize output has no ConfigMap ({kinds})")
    if "Secret" in kinds:
        errors.append("kustomize output contains a Secret")
    for img in walk_images(docs):
        if img != IMAGE:
            errors.append(f"kustomize output image {img!r}, expected {IMAGE}")
    return errors


# ---- the checks must be able to fail -------------------------------------

def pod(m, fname):
    d = next(x for x in m[fname] if x.get("kind") in ("Deployment", "CronJob"))
    if d["kind"] == "CronJob":
        return d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return d["spec"]["template"]["spec"]


def reaper(m, fname):
    p = pod(m, fname)
    return next(c for c in p.get("initContainers", []) + p["containers"] if c["image"] == IMAGE)


def sentinel_cm_edit(m, old, new):
    cm = next(d for d in m["sentinel.yaml"] if d.get("kind") == "ConfigMap")
    assert old in cm["data"][CONFIG_KEY], old
    cm["data"][CONFIG_KEY] = cm["data"][CONFIG_KEY].replace(old, new)


def cm_edit(m, old, new):
    cm = m["configmap.yaml"][0]
    assert old in cm["data"][CONFIG_KEY], old
    cm["data"][CONFIG_KEY] = cm["data"][CONFIG_KEY].replace(old, new)


def tls_cm_edit(m, old, new):
    cm = m["configmap-tls.yaml"][0]
    assert old in cm["data"][CONFIG_KEY], old
    cm["data"][CONFIG_KEY] = cm["data"][CONFIG_KEY].replace(old, new)


MUTATIONS = {
    "sidecar without restartPolicy Always":
        lambda m: reaper(m, "sidecar.yaml").pop("restartPolicy"),
    "sidecar as a plain container":
        lambda m: pod(m, "sidecar.yaml")["containers"].append(
            pod(m, "sidecar.yaml").pop("initContainers")[0]),
    "readinessProbe on the sidecar":
        lambda m: reaper(m, "sidecar.yaml").update(
            readinessProbe={"httpGet": {"path": "/readyz", "port": "metrics"}}),
    "one replica": lambda m: m["deployment.yaml"][0]["spec"].update(replicas=1),
    "concurrencyPolicy Allow":
        lambda m: m["cronjob.yaml"][0]["spec"].update(concurrencyPolicy="Allow"),
    "CronJob without --once": lambda m: reaper(m, "cronjob.yaml")["args"].remove("--once"),
    "CronJob restartPolicy OnFailure":
        lambda m: pod(m, "cronjob.yaml").update(restartPolicy="OnFailure"),
    "CronJob backoffLimit 6":
        lambda m: m["cronjob.yaml"][0]["spec"]["jobTemplate"]["spec"].update(backoffLimit=6),
    "CronJob missing": lambda m: m["cronjob.yaml"].clear(),
    "POD_NAME from the namespace":
        lambda m: reaper(m, "deployment.yaml")["env"][0]["valueFrom"]["fieldRef"].update(
            fieldPath="metadata.namespace"),
    "liveness on /metrics":
        lambda m: reaper(m, "sidecar.yaml")["livenessProbe"]["httpGet"].update(path="/metrics"),
    "liveness missing": lambda m: reaper(m, "deployment.yaml").pop("livenessProbe"),
    "metrics port renamed":
        lambda m: reaper(m, "deployment.yaml")["ports"][0].update(name="http"),
    "grace period 1 s":
        lambda m: pod(m, "cronjob.yaml").update(terminationGracePeriodSeconds=1),
    "runAsNonRoot false":
        lambda m: reaper(m, "sidecar.yaml")["securityContext"].update(runAsNonRoot=False),
    "runAsUser 0": lambda m: reaper(m, "deployment.yaml")["securityContext"].update(runAsUser=0),
    "allowPrivilegeEscalation true":
        lambda m: reaper(m, "cronjob.yaml")["securityContext"].update(allowPrivilegeEscalation=True),
    "capabilities kept":
        lambda m: reaper(m, "deployment.yaml")["securityContext"].pop("capabilities"),
    "writable root file system":
        lambda m: reaper(m, "sidecar.yaml")["securityContext"].update(readOnlyRootFilesystem=False),
    "seccomp Unconfined":
        lambda m: reaper(m, "cronjob.yaml")["securityContext"]["seccompProfile"].update(
            type="Unconfined"),
    "misspelt container field":
        lambda m: reaper(m, "deployment.yaml").update(
            livenesProbe=reaper(m, "deployment.yaml").pop("livenessProbe")),
    "no resource requests": lambda m: reaper(m, "sidecar.yaml")["resources"].pop("requests"),
    "memory limit 64Mi":
        lambda m: reaper(m, "deployment.yaml")["resources"]["limits"].update(memory="64Mi"),
    "Secret not mounted":
        lambda m: reaper(m, "cronjob.yaml")["volumeMounts"].pop(),
    "Secret mounted elsewhere":
        lambda m: reaper(m, "sidecar.yaml")["volumeMounts"][1].update(mountPath="/run/secrets/redis"),
    "Secret file unreadable by 65532":
        lambda m: pod(m, "sidecar.yaml")["volumes"][1]["secret"].update(defaultMode=0o440),
    "password_file elsewhere":
        lambda m: cm_edit(m, '"/etc/presence-reaper/secret/password"', '"/etc/redis-password"'),
    "password in the ConfigMap":
        lambda m: cm_edit(m, "connect_timeout = 2;", 'password = "hunter2";\n  connect_timeout = 2;'),
    "identity fixed":
        lambda m: cm_edit(m, 'identity = "";', 'identity = "reaper";'),
    "metrics on another port":
        lambda m: cm_edit(m, '"0.0.0.0:9577"', '"0.0.0.0:9000"'),
    "-c names another file":
        lambda m: reaper(m, "deployment.yaml")["args"].__setitem__(1, "/etc/presence-reaper.conf"),
    "image from a registry":
        lambda m: reaper(m, "sidecar.yaml").update(image="registry.example.com/presence-reaper:latest"),
    "real-looking password in the example Secret":
        lambda m: m["secret.example.yaml"][0]["stringData"].update(password="s3cr3t-Pa55"),
    "sentinel URL a plain redis:// one":
        lambda m: sentinel_cm_edit(m, "redis+sentinel://redis-sentinel-0.redis-sentinel:26379,"
                                   "redis-sentinel-1.redis-sentinel:26379,"
                                   "redis-sentinel-2.redis-sentinel:26379/mymaster/0",
                                   "redis://redis:6379/0"),
    "one Sentinel only":
        lambda m: sentinel_cm_edit(m, "redis-sentinel-0.redis-sentinel:26379,"
                                   "redis-sentinel-1.redis-sentinel:26379,", ""),
    "Sentinel Secret not mounted":
        lambda m: reaper(m, "sentinel.yaml")["volumeMounts"].pop(),
    "Sentinel password in the ConfigMap":
        lambda m: sentinel_cm_edit(m, "sentinel = {\n", 'sentinel = {\n  password = "x";\n'),
    "sentinel Deployment on the plain ConfigMap":
        lambda m: pod(m, "sentinel.yaml")["volumes"][0]["configMap"].update(name=CONFIGMAP),
    "Secret applied by kustomize":
        lambda m: m["kustomization.yaml"][0]["resources"].append("secret.example.yaml"),
    "TLS Secret applied by kustomize":
        lambda m: m["kustomization.yaml"][0]["resources"].append("secret-tls.example.yaml"),
    "TLS variant with a redis:// URL":
        lambda m: tls_cm_edit(m, '"rediss://redis:6380/0"', '"redis://redis:6380/0"'),
    "TLS Secret not mounted":
        lambda m: reaper(m, "deployment-tls.yaml")["volumeMounts"].pop(),
    "TLS Secret mounted writable":
        lambda m: reaper(m, "deployment-tls.yaml")["volumeMounts"][-1].update(readOnly=False),
    "TLS Secret as a subPath":
        lambda m: reaper(m, "deployment-tls.yaml")["volumeMounts"][-1].update(subPath="ca.crt"),
    "tls.ca_file elsewhere":
        lambda m: tls_cm_edit(m, '"/etc/presence-reaper/tls/ca.crt"', '"/etc/ssl/ca.crt"'),
    "client key readable by nobody":
        lambda m: pod(m, "deployment-tls.yaml")["volumes"][-1]["secret"].update(defaultMode=0o400),
    "TLS variant on the plain ConfigMap":
        lambda m: pod(m, "deployment-tls.yaml")["volumes"][0]["configMap"].update(
            name="presence-reaper"),
    "real-looking key in the example TLS Secret":
        lambda m: m["secret-tls.example.yaml"][0]["stringData"].update(
            **{"tls.key": "-----BEGIN PRIVATE KEY-----"}),
}


def self_test(manifests):
    """Every mutation must be reported; returns the names of those that were not."""
    missed = []
    for name, mutate in MUTATIONS.items():
        m = copy.deepcopy(manifests)
        mutate(m)
        if not Checker(m).run(folder_files=set(manifests)):
            missed.append(name)
    return missed


def main():
    folder = Path(sys.argv[1])
    binary = os.environ.get("PRESENCE_REAPER")
    if not binary:
        sys.exit("check_manifests.py: set PRESENCE_REAPER to the built binary")
    manifests = load(folder)
    checker = Checker(manifests)
    errors = checker.run()
    notes = []

    text = Checker(manifests).config_text()
    if text:
        pwfile = conf_string(text, "redis", "password_file")
        e, notes = run_check_config(binary, text, pwfile)
        errors += e
        # ... and the binary check fails on a bad config.
        bad, _ = run_check_config(binary, text.replace("batch_size = 500;", "batch_size = 0;"),
                                  pwfile)
        if not bad:
            errors.append("self-test: -t accepted batch_size = 0")
    stext = Checker(manifests).config_text("sentinel.yaml", SENTINEL_CONFIGMAP)
    if stext:
        errors += run_sentinel_check_config(binary, stext)
        if not run_sentinel_check_config(binary, stext.replace("/mymaster/0", "/mymaster/x")):
            errors.append("self-test: -t accepted a sentinel URL with a bad database")
    htext = Checker(manifests).config_text("sharded.yaml", SHARDED_CONFIGMAP)
    if htext:
        errors += run_sharded_check_config(binary, htext)
        if not run_sharded_check_config(binary, htext.replace('"presence:{<shard>}:user:"',
                                                              '"presence:user:"')):
            errors.append("self-test: -t accepted a sharded layout whose keys span slots")
    text = Checker(manifests).config_text("configmap-tls.yaml", CONFIGMAP_TLS)
    if text:
        pwfile = conf_string(text, "redis", "password_file")
        e, _ = run_check_config(binary, text, pwfile, tls=True)
        errors += [f"configmap-tls.yaml: {x}" for x in e]
        # ... and -t refuses a TLS file it cannot read.
        bad, _ = run_check_config(binary, text, pwfile, tls=True, missing="tls.key")
        if not bad:
            errors.append("self-test: -t accepted a missing tls.key_file")

    kubectl = os.environ.get("KUBECTL")
    if kubectl:
        errors += run_kustomize(kubectl, folder)
    else:
        notes.append("note: kubectl not found; kustomization.yaml not rendered")

    if not errors:
        missed = self_test(manifests)
        errors += [f"self-test: a manifest with '{n}' passed the checks" for n in missed]

    for n in notes:
        print(n)
    if errors:
        print("FAIL\n  " + "\n  ".join(errors))
        sys.exit(1)
    print(f"{sum(len(d) for d in manifests.values())} documents in {len(manifests)} files OK; "
          f"{len(MUTATIONS)} broken variants all caught")


if __name__ == "__main__":
    main()
