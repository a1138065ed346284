#!/usr/bin/env bash
# deploy/ against the built programs, without Docker or Kubernetes (docs/DEPLOY.md):
#   - every YAML file parses (all documents; duplicate keys are errors), every .env file
#     holds only keys some program has;
#   - every crmsync-* program named in the Dockerfile, compose, k8s and systemd exists in
#     CRMSYNC_BIN_DIR, and the image holds exactly the programs CMake builds;
#   - each compose service / k8s container / systemd unit gets its effective environment
#     (image ENV, env_file, environment, ConfigMap, Secret placeholders, interpolation) and
#     argv; `<program> --check-config` must exit 0 with it, and `--dump-config` must show
#     every CRMSYNC_* variable given to that container taken (kafka.* also accepted by
#     librdkafka's rd_kafka_conf_set); secrets only from secret sources;
#   - the topic job: crmsync-admin topics create, replication 3, the same partitions and
#     topic names as every program, retention long enough to replay; cs_topics.c compacts
#     the state and cursor topics;
#   - probes/healthchecks/Prometheus targets on each program's http.port, the brokers'
#     KRaft quorum, PodDisruptionBudget and Service selectors, pod security, Dockerfile
#     stages/USER/HEALTHCHECK/runtime libraries, systemd hardening (+ systemd-analyze).
# Prints one line per check and "N passed, N failed". Needs PyYAML in CRMSYNC_PYTHON
# (tests/interop/requirements.txt; tools/install-deps.sh installs it).
set -euo pipefail
SRC=${CRMSYNC_SOURCE_DIR:?}
BIN=${CRMSYNC_BIN_DIR:?}
PY=${CRMSYNC_PYTHON:-python3}
if ! "$PY" -c 'import yaml' 2>/dev/null; then
    echo "FAIL PyYAML is not installed in $PY (tools/install-deps.sh installs tests/interop/requirements.txt)"
    echo "0 passed, 1 failed"
    exit 1
fi
exec "$PY" - "$SRC" "$BIN" <<'PYTHON'
import ctypes
import fnmatch
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

SRC, BIN = sys.argv[1], sys.argv[2]
DEPLOY = os.path.join(SRC, "deploy")
COMPOSE_DIR = os.path.join(DEPLOY, "compose")
K8S_DIR = os.path.join(DEPLOY, "k8s")
SYSTEMD_DIR = os.path.join(DEPLOY, "systemd")
LONG_RUNNING = {
    "crmsync-sync-consumer",
    "crmsync-prospect-producer",
    "crmsync-crm-producer",
    "crmsync-activity-producer",
    "crmsync-sandbox",
}
REDACTED = "********"
MIN_REPLAY_MS = 7 * 24 * 3600 * 1000

npass = nfail = 0


def check(name, ok, detail=""):
    global npass, nfail
    if ok:
        npass += 1
        print(f"ok   {name}")
    else:
        nfail += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))
    return ok


def rel(p):
    return os.path.relpath(p, SRC)


# ------------------------------------------------------------------ YAML, strictly


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for k, _ in node.value:
            if k.tag == "tag:yaml.org,2002:merge" or not isinstance(k, yaml.ScalarNode):
                continue
            if k.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {k.value!r}", k.start_mark
                )
            seen.add(k.value)
        return super().construct_mapping(node, deep)


def load_yaml_all(path):
    with open(path) as f:
        return [d for d in yaml.load_all(f, Loader=StrictLoader) if d is not None]


yaml_docs = {}
for path in sorted(glob.glob(os.path.join(DEPLOY, "**", "*.y*ml"), recursive=True)):
    try:
        yaml_docs[path] = load_yaml_all(path)
        check(
            f"yaml parses: {rel(path)} ({len(yaml_docs[path])} document(s))",
            len(yaml_docs[path]) > 0,
            "empty",
        )
    except yaml.YAMLError as e:
        yaml_docs[path] = []
        check(f"yaml parses: {rel(path)}", False, str(e).replace("\n", " "))


def env_file_parse(path):
    """KEY=VALUE lines (compose env_file / systemd EnvironmentFile subset)."""
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            if "=" not in s:
                raise ValueError(f"{rel(path)}:{n}: not KEY=VALUE")
            k, v = s.split("=", 1)
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            out[k.strip()] = v
    return out


# ------------------------------------------------------------------ the programs


def cmake_programs():
    progs = set()
    for d in ("consumers", "producers", "sandbox", "tools"):
        for cm in glob.glob(os.path.join(SRC, d, "**", "CMakeLists.txt"), recursive=True):
            progs |= {
                "crmsync-" + m
                for m in re.findall(r"crmsync_add_program\(\s*([a-z][a-z0-9-]*)", open(cm).read())
            }
    return progs


PROGRAMS = cmake_programs()
check(
    "CMake builds the expected programs",
    LONG_RUNNING | {"crmsync-admin", "crmsync-import"} <= PROGRAMS,
    f"found {sorted(PROGRAMS)}",
)


def run(prog, args, env, what):
    exe = os.path.join(BIN, prog)
    e = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LC_ALL": "C"}
    e.update(env)
    return subprocess.run(
        [exe, what] + list(args),
        env=e,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def dump_of(out):
    d = {}
    for line in out.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        d[k] = v
    return d


def env_name(key):
    return "CRMSYNC_" + re.sub(r"[.-]", "_", key.upper())


OPTIONS, SENSITIVE = {}, {}
for prog in sorted(PROGRAMS):
    if not os.access(os.path.join(BIN, prog), os.X_OK):
        continue
    r = run(prog, [], {}, "--dump-config")
    OPTIONS[prog] = {k for k in dump_of(r.stdout) if not k.startswith("kafka.")} | set(
        re.findall(r"^# (\S+) is unset$", r.stdout, re.M)
    )
    r = run(prog, [], {}, "--config-reference")
    SENSITIVE[prog] = {
        m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|.*\(secret\) \|$", r.stdout, re.M)
    }
ALL_ENV_NAMES = {env_name(k) for opts in OPTIONS.values() for k in opts}


def kafka_key(var):
    return "kafka." + var[len("CRMSYNC_KAFKA_") :].lower().replace("_", ".")


# librdkafka as the programs load it: a kafka.* key must be a property it accepts.
def load_rdkafka():
    out = subprocess.run(
        ["ldd", os.path.join(BIN, "crmsync-sync-consumer")], capture_output=True, text=True
    ).stdout
    m = re.search(r"librdkafka\.so\.\d+ => (\S+)", out)
    lib = ctypes.CDLL(m.group(1) if m else "librdkafka.so.1")
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.rd_kafka_conf_set.restype = ctypes.c_int
    lib.rd_kafka_conf_destroy.argtypes = [ctypes.c_void_p]
    return lib


RDK = load_rdkafka()


def rdkafka_accepts(prop, value):
    conf = RDK.rd_kafka_conf_new()
    buf = ctypes.create_string_buffer(512)
    rc = RDK.rd_kafka_conf_set(conf, prop.encode(), value.encode(), buf, 512)
    RDK.rd_kafka_conf_destroy(conf)
    return rc == 0, buf.value.decode(errors="replace")


def is_sensitive_key(prog, key):
    if key.startswith("kafka."):
        return bool(re.search(r"password|secret|\.pem$|oauthbearer\.config", key))
    return key in SENSITIVE.get(prog, set())


# Shared sources (env files, ConfigMaps, image ENV): each variable must be taken by at least
# one program that reads the source. Explicit per-container variables: by that program.
shared_use = {}  # (source, var) -> set of programs that took it
containers = []  # dicts: deployment, name, prog, args, dump, env


def check_container(deployment, name, argv, env, explicit_sources):
    """env: var -> (value, source). Returns the container record or None."""
    if not argv or not argv[0].startswith("crmsync-"):
        check(f"{deployment} {name}: runs a crmsync program", False, f"argv {argv}")
        return None
    prog, args = os.path.basename(argv[0]), argv[1:]
    if not check(
        f"{deployment} {name}: {prog} exists in CRMSYNC_BIN_DIR",
        prog in PROGRAMS and os.access(os.path.join(BIN, prog), os.X_OK),
    ):
        return None
    plain = {k: v for k, (v, _) in env.items()}
    r = run(prog, args, plain, "--check-config")
    check(
        f"{deployment} {name}: {prog} --check-config",
        r.returncode == 0,
        (r.stderr or r.stdout).strip(),
    )
    r = run(prog, args, plain, "--dump-config")
    dump = dump_of(r.stdout)
    set_by_args = {a.split("=", 1)[0] for a in args if "=" in a} | {
        a[2:] for a in args if a.startswith("--")
    }
    taken, bad, secret_leaks = 0, [], []
    opt_by_env = {env_name(k): k for k in OPTIONS.get(prog, ())}
    for var, (value, src) in sorted(env.items()):
        if not var.startswith("CRMSYNC_"):
            continue
        key = kafka_key(var) if var.startswith("CRMSYNC_KAFKA_") else opt_by_env.get(var)
        ok = key is not None and key in dump
        if ok and dump[key] not in (value, REDACTED) and key not in set_by_args:
            bad.append(f"{var}={value!r} but the program shows {key}={dump[key]!r}")
        if ok:
            taken += 1
            if (
                is_sensitive_key(prog, key) or dump[key] == REDACTED
            ) and "secret" not in src.lower():
                secret_leaks.append(f"{var} from {src}")
        if src in explicit_sources:
            if not ok:
                bad.append(f"{var} ({src}) is not an option of {prog}")
        else:
            shared_use.setdefault((src, var), set())
            if ok:
                shared_use[(src, var)].add(prog)
    check(
        f"{deployment} {name}: every CRMSYNC_* variable it is given is taken ({taken})",
        not bad,
        "; ".join(bad),
    )
    check(
        f"{deployment} {name}: secrets only from secret sources",
        not secret_leaks,
        "; ".join(secret_leaks),
    )
    kbad = []
    for k, v in dump.items():
        if k.startswith("kafka."):
            var = "CRMSYNC_KAFKA_" + k[6:].upper().replace(".", "_")
            ok, err = rdkafka_accepts(k[6:], env.get(var, (v,))[0] if v == REDACTED else v)
            if not ok:
                kbad.append(f"{k}: {err}")
    check(
        f"{deployment} {name}: librdkafka accepts its kafka.* settings", not kbad, "; ".join(kbad)
    )
    positional = []
    i = 0
    while i < len(args):  # the argument parser of cs_conf_from_args, for the command words
        a = args[i]
        if a in ("--set", "-o", "--config", "-c"):
            i += 2
            continue
        if (
            a.startswith("--")
            and "=" not in a
            and a[2:] in OPTIONS.get(prog, ()) | {"dump-config", "check-config"}
        ):
            i += 2 if a[2:] in OPTIONS.get(prog, ()) else 1
            continue
        if a.startswith("-"):
            i += 1
            continue
        positional = args[i:]
        break
    rec = dict(
        deployment=deployment,
        name=name,
        prog=prog,
        args=args,
        positional=positional,
        dump=dump,
        env=env,
    )
    containers.append(rec)
    return rec


def check_shared(label):
    for (src, var), progs in sorted(shared_use.items()):
        check(
            f"{label}: {var} ({src}) is taken by some program",
            bool(progs),
            "no program reading it has this option (typo?)",
        )
    shared_use.clear()


# ------------------------------------------------------------------ Dockerfile


def dockerfile_instructions(path):
    lines, cur = [], ""
    for raw in open(path):
        s = raw.rstrip("\n")
        if not cur and (s.lstrip().startswith("#") or not s.strip()):
            continue
        if s.lstrip().startswith("#"):
            continue  # comment inside a continued instruction
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        lines.append(cur.strip())
        cur = ""
    out = []
    for l in lines:
        ins, _, rest = l.partition(" ")
        out.append((ins.upper(), rest.strip()))
    return out


DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
ins = dockerfile_instructions(DOCKERFILE)
args_default = {}
stages, cur = [], None
for op, rest in ins:
    if op == "ARG" and cur is None:
        k, _, v = rest.partition("=")
        args_default[k] = v
    if op == "FROM":
        cur = {"from": rest, "ins": []}
        stages.append(cur)
    elif cur is not None:
        cur["ins"].append((op, rest))


def subst_args(s):
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: args_default.get(m.group(1) or m.group(2), m.group(0)), s
    )


check(
    "Dockerfile: multi-stage (a build stage and a runtime stage)",
    len(stages) >= 2,
    f"{len(stages)} stage(s)",
)
build_from = subst_args(stages[0]["from"]) if stages else ""
final = stages[-1] if stages else {"from": "", "ins": []}
final_from = subst_args(final["from"])
check(
    "Dockerfile: builds on Debian bookworm",
    re.match(r"debian:bookworm\S*\s+AS\s+\w+", build_from, re.I) is not None,
    build_from,
)
check(
    "Dockerfile: runs on a slim image",
    re.match(r"debian:bookworm-slim\b", final_from) is not None,
    final_from,
)
check(
    "Dockerfile: the runtime stage copies the programs from the build stage",
    any(op == "COPY" and "--from=" in r for op, r in final["ins"]),
)
users = [r for op, r in final["ins"] if op == "USER"]
check(
    "Dockerfile: runs as a non-root user",
    bool(users) and users[-1].split(":")[0] not in ("root", "0"),
    f"USER {users}",
)
hc = [r for op, r in final["ins"] if op == "HEALTHCHECK"]
check("Dockerfile: HEALTHCHECK on /healthz", bool(hc) and "/healthz" in hc[-1], f"{hc}")
IMAGE_ENV = {}
for op, r in final["ins"]:
    if op == "ENV":
        for m in re.finditer(r"(\w+)=(\"[^\"]*\"|\S+)", r):
            IMAGE_ENV[m.group(1)] = m.group(2).strip('"')
cmd = [r for op, r in final["ins"] if op == "CMD"]
IMAGE_CMD = yaml.safe_load(cmd[-1]) if cmd else []
check(
    "Dockerfile: no secret in ENV/ARG",
    not [
        k
        for op, r in ins
        if op in ("ENV", "ARG")
        for k in re.findall(r"(\w+)=", r + "=")
        if re.search(r"SECRET|PASSWORD|TOKEN", k)
    ],
)
docker_text = open(DOCKERFILE).read()
named = set(re.findall(r"\bcrmsync-[a-z]+(?:-[a-z]+)*\b", " ".join(r for _, r in ins)))
check(
    "Dockerfile: names only programs CMake builds",
    named <= PROGRAMS,
    f"unknown: {sorted(named - PROGRAMS)}",
)
for p in sorted(named):
    check(f"Dockerfile: {p} exists in CRMSYNC_BIN_DIR", os.access(os.path.join(BIN, p), os.X_OK))
image_progs = PROGRAMS  # every program CMake builds outside tests/ and bench/
for op, r in stages[0]["ins"] if stages else []:
    if op == "RUN" and "--target" in r:
        built = set(
            re.findall(
                r"\bcrmsync-[a-z]+(?:-[a-z]+)*\b", r.split("--target", 1)[1].split("&&", 1)[0]
            )
        )
        check(
            "Dockerfile: builds every program",
            built == image_progs,
            f"missing {sorted(image_progs - built)}, extra {sorted(built - image_progs)}",
        )
    if op == "RUN" and re.search(r"\binstall -m", r):
        inst = set(
            re.findall(r"\bcrmsync-[a-z]+(?:-[a-z]+)*\b", re.split(r"\binstall -m", r, 1)[1])
        )
        check(
            "Dockerfile: installs every program",
            inst == image_progs,
            f"missing {sorted(image_progs - inst)}, extra {sorted(inst - image_progs)}",
        )
# Build packages: what tools/install-deps.sh installs to build; runtime: what the programs link.
want = re.search(r"want=\(([^)]*)\)", open(os.path.join(SRC, "tools", "install-deps.sh")).read())
dev = [p for p in (want.group(1).split() if want else []) if p.endswith("-dev")]
build_run = " ".join(r for op, r in stages[0]["ins"] if op == "RUN") if stages else ""
missing_dev = [p for p in dev if not re.search(r"(^|\s)" + re.escape(p) + r"(\s|$)", build_run)]
check(
    "Dockerfile: the build stage installs the -dev packages of tools/install-deps.sh",
    bool(dev) and not missing_dev,
    f"missing {missing_dev}",
)
runtime_run = " ".join(r for op, r in final["ins"] if op == "RUN")
sonames = set()
for p in image_progs:
    out = subprocess.run(
        ["readelf", "-d", os.path.join(BIN, p)], capture_output=True, text=True
    ).stdout
    sonames |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))
missing_pkgs = []
for so in sorted(sonames):
    if re.match(r"lib(c|m|pthread|dl|rt)\.so", so):
        continue
    if re.match(r"lib(asan|ubsan|lsan|tsan)\.so", so):
        continue  # a sanitizer build's runtimes: never in the image
    lib = subprocess.run(
        ["sh", "-c", f"ldconfig -p | awk '$1 == \"{so}\" {{print $NF; exit}}'"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    pkg = subprocess.run(
        ["dpkg", "-S", os.path.realpath(lib) if lib else so], capture_output=True, text=True
    ).stdout.split(":")[0]
    if not pkg or not re.search(rf"\b{re.escape(pkg)}\b", runtime_run):
        missing_pkgs.append(f"{so} ({pkg or 'package unknown'})")
check(
    f"Dockerfile: the runtime stage installs the packages of the {len(sonames)} linked libraries",
    not missing_pkgs,
    f"missing {missing_pkgs}",
)

dockerignore = os.path.join(SRC, ".dockerignore")
if check(".dockerignore exists at the build context root", os.path.exists(dockerignore)):
    pats = [
        l.strip().rstrip("/") for l in open(dockerignore) if l.strip() and not l.startswith("#")
    ]
    check(
        ".dockerignore keeps .git, .cache and the build directories out",
        {".git", ".cache", "build*"} <= set(pats),
        f"{pats}",
    )
    needed = re.findall(
        r"add_subdirectory\((\w+)\)", open(os.path.join(SRC, "CMakeLists.txt")).read()
    ) + ["schemas", "CMakeLists.txt"]
    excluded = [d for d in needed for p in pats if not p.startswith("!") and fnmatch.fnmatch(d, p)]
    check(".dockerignore keeps what CMake needs", not excluded, f"excluded: {excluded}")

# ------------------------------------------------------------------ compose

COMPOSE = os.path.join(COMPOSE_DIR, "docker-compose.yml")
compose = (yaml_docs.get(COMPOSE) or [{}])[0]
INTERP = re.compile(
    r"\$\$|\$\{(?P<b>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<n>[A-Za-z_]\w*)"
)
undefined = []


def interp(v):
    if isinstance(v, dict):
        return {k: interp(x) for k, x in v.items()}
    if isinstance(v, list):
        return [interp(x) for x in v]
    if not isinstance(v, str):
        return v

    def rep(m):
        if m.group(0) == "$$":
            return "$"
        if m.group("op") in (":-", "-"):
            return m.group("arg")
        undefined.append(m.group(0))
        return ""

    return INTERP.sub(rep, v)


compose = interp(compose)
check("compose: every ${VAR} has a default", not undefined, f"{sorted(set(undefined))}")
services = compose.get("services", {}) if isinstance(compose, dict) else {}
check("compose: services defined", bool(services))
bad_types = [
    f"{s}.{k}"
    for s, svc in services.items()
    for k, v in (svc.get("environment") if isinstance(svc.get("environment"), dict) else {}).items()
    if isinstance(v, bool) or isinstance(v, (dict, list))
]
check(
    "compose: environment values are strings or numbers (compose rejects booleans)",
    not bad_types,
    f"{bad_types}",
)


def is_crmsync_image(svc):
    b = svc.get("build")
    return isinstance(b, dict) and b.get("dockerfile") == "deploy/Dockerfile"


def argv_of(cmd):
    if cmd is None:
        return None
    return shlex.split(cmd) if isinstance(cmd, str) else [str(x) for x in cmd]


crm_svcs = {n: s for n, s in services.items() if is_crmsync_image(s)}
images = {s.get("image") for s in crm_svcs.values()}
check(
    "compose: every crmsync service runs one image built from deploy/Dockerfile",
    len(images) == 1,
    f"{images}",
)
strays = [
    n
    for n, s in services.items()
    if not is_crmsync_image(s) and "crmsync-" in " ".join(argv_of(s.get("command")) or [])
]
check("compose: crmsync programs run only from the crmsync image", not strays, f"{strays}")

for n, s in sorted(crm_svcs.items()):
    env = {k: (v, "image ENV") for k, v in IMAGE_ENV.items()}
    files = s.get("env_file") or []
    files = [files] if isinstance(files, (str, dict)) else files
    for ef in files:
        p = ef if isinstance(ef, str) else ef.get("path")
        full = os.path.join(COMPOSE_DIR, p)
        if check(f"compose {n}: env_file {p} exists", os.path.exists(full)):
            for k, v in env_file_parse(full).items():
                env[k] = (v, f"env_file {p}")
    e = s.get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) if "=" in x else (x, "") for x in e)
    for k, v in e.items():
        env[k] = ("" if v is None else str(v), "environment")
    argv = argv_of(s.get("entrypoint") or []) + (argv_of(s.get("command")) or IMAGE_CMD)
    check_container("compose", n, argv, env, {"environment"})
check_shared("compose")

cc = [c for c in containers if c["deployment"] == "compose"]
by_name = {c["name"]: c for c in cc}
jobs = [
    c for c in cc if c["prog"] == "crmsync-admin" and c["positional"][:2] == ["topics", "create"]
]
check(
    "compose: one topic job running crmsync-admin topics create",
    len(jobs) == 1,
    f"{[c['name'] for c in jobs]}",
)
consumers = [c for c in cc if c["prog"] == "crmsync-sync-consumer"]
check("compose: three sync-consumer replicas", len(consumers) == 3, f"{len(consumers)}")
for prog in (
    "crmsync-prospect-producer",
    "crmsync-crm-producer",
    "crmsync-activity-producer",
    "crmsync-sandbox",
):
    check(f"compose: runs {prog}", any(c["prog"] == prog for c in cc))
check(
    "compose: Prometheus", any("prom/prometheus" in str(s.get("image")) for s in services.values())
)


def topic_checks(label, deployment_containers, job):
    jd = job["dump"]
    check(
        f"{label}: topic job replication is 3",
        jd.get("topics.replication") == "3",
        f"topics.replication={jd.get('topics.replication')}",
    )
    ret = int(jd.get("topics.retention.ms", "0"))
    check(
        f"{label}: input retention is long enough to replay (>= 7 days)",
        ret == -1 or ret >= MIN_REPLAY_MS,
        f"{ret} ms",
    )
    keys = [k for k in jd if k.startswith("topic.") or k == "topics.partitions"]
    diff = [
        f"{c['name']}: {k}={c['dump'][k]} (job: {jd[k]})"
        for c in deployment_containers
        for k in keys
        if k in c["dump"] and c["dump"][k] != jd[k]
    ]
    check(
        f"{label}: every program uses the job's topic names and partition count",
        not diff,
        "; ".join(diff),
    )
    cons = [c for c in deployment_containers if c["prog"] == "crmsync-sync-consumer"]
    groups = {c["dump"].get("group.id") for c in cons}
    check(
        f"{label}: the sync-consumer replicas share one consumer group",
        len(groups) == 1,
        f"{groups}",
    )
    return int(jd.get("topics.partitions", "0"))


if jobs:
    parts = topic_checks("compose", cc, jobs[0])
    check(
        "compose: no more consumer replicas than partitions",
        len(consumers) <= parts,
        f"{len(consumers)} > {parts}",
    )
    job_svc = services[jobs[0]["name"]]
    check(
        'compose: the topic job runs once (restart: "no")',
        str(job_svc.get("restart", "no")) == "no",
        f"restart: {job_svc.get('restart')}",
    )
    check(
        "compose: the topic job has no healthcheck (it serves no HTTP)",
        (job_svc.get("healthcheck") or {}).get("disable") is True,
    )
    for n, s in crm_svcs.items():
        if n == jobs[0]["name"] or by_name.get(n, {}).get("prog") == "crmsync-sandbox":
            continue
        dep = s.get("depends_on") or {}
        cond = dep.get(jobs[0]["name"], {}).get("condition") if isinstance(dep, dict) else None
        check(
            f"compose {n}: starts after the topic job",
            cond == "service_completed_successfully",
            f"depends_on {dep}",
        )

# cs_topics.c: the source of the settings the job applies.
topics_c = open(os.path.join(SRC, "common", "cs_topics.c")).read()
check(
    "cs_topics.c: the state topic is compacted",
    re.search(r"specs\[CS_TOPIC_STATE\]\.configs\s*=\s*compacted_cfg", topics_c) is not None,
)
check(
    "cs_topics.c: the cursors topic is compacted",
    re.search(r"specs\[CS_TOPIC_CURSORS\]\.configs\s*=\s*compacted_cfg", topics_c) is not None,
)
check(
    "cs_topics.c: compacted_cfg says cleanup.policy=compact",
    re.search(r"compacted_cfg\[\]\s*=\s*\{[^}]*\"cleanup\.policy\",\s*\"compact\"", topics_c)
    is not None,
)
check(
    "cs_topics.c: input topics are retained topics.retention.ms",
    re.search(r"input_cfg\[\]\s*=\s*\{\s*\"retention\.ms\",\s*retention", topics_c) is not None,
)

# Kafka brokers
brokers = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka:")}
check(
    "compose: three Apache Kafka brokers (official image)", len(brokers) == 3, f"{sorted(brokers)}"
)
kver = re.search(r"KAFKA_VERSION=([\d.]+)", open(os.path.join(DEPLOY, "kafka", "kafka.sh")).read())
check(
    "compose: brokers pinned to the dev broker's Kafka version",
    kver is not None
    and all(s["image"] == f"apache/kafka:{kver.group(1)}" for s in brokers.values()),
    f"{[s['image'] for s in brokers.values()]} vs {kver.group(1) if kver else '?'}",
)
benv = {n: {k: str(v) for k, v in (s.get("environment") or {}).items()} for n, s in brokers.items()}
ids = {n: e.get("KAFKA_NODE_ID") for n, e in benv.items()}
check(
    "compose: unique broker node ids",
    len(set(ids.values())) == len(ids) and None not in ids.values(),
    f"{ids}",
)
voters = {e.get("KAFKA_CONTROLLER_QUORUM_VOTERS") for e in benv.values()}
vmap = {}
if len(voters) == 1 and None not in voters:
    for v in next(iter(voters)).split(","):
        i, _, hp = v.partition("@")
        vmap[i] = hp.split(":")[0]
check(
    "compose: every broker is a KRaft voter under its own name",
    len(voters) == 1
    and all(vmap.get(i) in (n, brokers[n].get("hostname")) for n, i in ids.items())
    and len(vmap) == len(ids),
    f"voters {voters}, ids {ids}",
)
check(
    "compose: brokers run KRaft combined roles",
    all(
        set(e.get("KAFKA_PROCESS_ROLES", "").split(",")) == {"broker", "controller"}
        for e in benv.values()
    ),
)
check(
    "compose: one CLUSTER_ID",
    len({e.get("CLUSTER_ID") for e in benv.values()}) == 1
    and None not in {e.get("CLUSTER_ID") for e in benv.values()},
)
rf_ok = all(
    int(e.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3")) == 3
    and int(e.get("KAFKA_MIN_INSYNC_REPLICAS", "1")) == 2
    for e in benv.values()
)
check(
    "compose: internal topics replicated 3, min.insync.replicas 2 (one broker may be down)", rf_ok
)
advertised = set()
for e in benv.values():
    for l in e.get("KAFKA_ADVERTISED_LISTENERS", "").split(","):
        m = re.match(r"PLAINTEXT://([^:]+):(\d+)", l)
        if m:
            advertised.add(f"{m.group(1)}:{m.group(2)}")
bs_bad = [
    f"{c['name']}: {c['dump'].get('kafka.bootstrap.servers')}"
    for c in cc
    if c["prog"] != "crmsync-sandbox"
    and not (set((c["dump"].get("kafka.bootstrap.servers") or "-").split(",")) <= advertised)
]
check(
    "compose: every program bootstraps from the brokers' advertised listeners",
    not bs_bad,
    "; ".join(bs_bad),
)
if jobs:
    dep = services[jobs[0]["name"]].get("depends_on") or {}
    check(
        "compose: the topic job waits for every broker to be healthy",
        all(
            isinstance(dep, dict) and dep.get(b, {}).get("condition") == "service_healthy"
            for b in brokers
        ),
        f"{dep}",
    )

# HTTP: healthchecks and Prometheus on each long-running program's http.port
scrape = {}
prom = (yaml_docs.get(os.path.join(COMPOSE_DIR, "prometheus.yml")) or [{}])[0]
for job in prom.get("scrape_configs", []) if isinstance(prom, dict) else []:
    for sc in job.get("static_configs", []):
        for t in sc.get("targets", []):
            h, _, p = t.rpartition(":")
            scrape[h] = p
for c in cc:
    if c["prog"] not in LONG_RUNNING:
        continue
    d, s = c["dump"], services[c["name"]]
    port = d.get("http.port", "")
    check(
        f"compose {c['name']}: http.port set to a fixed port and bound to 0.0.0.0",
        port.isdigit() and int(port) > 0 and d.get("http.bind") == "0.0.0.0",
        f"http.port={port} http.bind={d.get('http.bind')}",
    )
    hcs = s.get("healthcheck")
    if hcs and not hcs.get("disable"):
        ok = "/healthz" in " ".join(argv_of(hcs.get("test")) or []) and port in " ".join(
            argv_of(hcs.get("test")) or []
        )
    else:
        ok = not hcs and c["env"].get("CRMSYNC_HTTP_PORT", ("9464",))[0] == port
    check(f"compose {c['name']}: the healthcheck probes /healthz on http.port {port}", ok)
    check(
        f"compose {c['name']}: Prometheus scrapes it on http.port",
        scrape.get(c["name"]) == port,
        f"target port {scrape.get(c['name'])}",
    )
stray_targets = [h for h in scrape if h not in by_name and h != "localhost"]
check("compose: Prometheus targets are compose services", not stray_targets, f"{stray_targets}")

# ------------------------------------------------------------------ Kubernetes

k8s_objs = []
for path in sorted(glob.glob(os.path.join(K8S_DIR, "*.y*ml"))):
    for d in yaml_docs.get(path, []):
        if isinstance(d, dict) and "kind" in d:
            k8s_objs.append((os.path.basename(path), d))
kust = next((d for f, d in k8s_objs if d.get("kind") == "Kustomization"), None)
manifests = sorted(
    os.path.basename(p)
    for p in glob.glob(os.path.join(K8S_DIR, "*.y*ml"))
    if not os.path.basename(p).startswith("kustomization")
)
check(
    "k8s: kustomization.yaml lists every manifest",
    kust is not None and sorted(kust.get("resources", [])) == manifests,
    f"{sorted(kust.get('resources', [])) if kust else None} vs {manifests}",
)
objs = [d for _, d in k8s_objs if d.get("kind") != "Kustomization"]
cms = {d["metadata"]["name"]: d.get("data", {}) for d in objs if d["kind"] == "ConfigMap"}
secrets = {
    d["metadata"]["name"]: {
        **{k: "placeholder" for k in d.get("data", {})},
        **d.get("stringData", {}),
    }
    for d in objs
    if d["kind"] == "Secret"
}
check("k8s: a ConfigMap for the configuration", bool(cms))
check("k8s: a Secret for the credentials", bool(secrets))
for n, data in cms.items():
    leaks = [k for k in data if re.search(r"SECRET|PASSWORD|TOKEN", k)]
    check(f"k8s ConfigMap {n}: no secrets", not leaks, f"{leaks}")
    check(f"k8s ConfigMap {n}: values are strings", all(isinstance(v, str) for v in data.values()))
namespaces = {d["metadata"].get("namespace") for d in objs if d["kind"] != "Namespace"}
check("k8s: every object in one namespace", len(namespaces) == 1, f"{namespaces}")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
workloads = [d for d in objs if d["kind"] in WORKLOADS]
k8s_images = set()


def labels_match(sel, labels):
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


for w in workloads:
    wname = f"{w['kind']}/{w['metadata']['name']}"
    pod = w["spec"]["template"]
    pspec = pod["spec"]
    if w["kind"] != "Job":
        check(
            f"k8s {wname}: selector matches its pod labels",
            labels_match(
                w["spec"].get("selector", {}).get("matchLabels"), pod["metadata"].get("labels", {})
            ),
        )
    psc = pspec.get("securityContext", {})
    inits = pspec.get("initContainers", [])
    if w["kind"] != "Job":
        check(
            f"k8s {wname}: an init container waits for the topics (crmsync-admin topics verify)",
            any(
                (c.get("command") or [])[:3] == ["crmsync-admin", "topics", "verify"] for c in inits
            ),
        )
    for ct in inits + pspec.get("containers", []):
        cname = f"{wname}/{ct['name']}"
        if "crmsync" not in str(ct.get("image")):
            continue
        k8s_images.add(ct.get("image"))
        env = {k: (v, "image ENV") for k, v in IMAGE_ENV.items()}
        for ef in ct.get("envFrom", []):
            if "configMapRef" in ef:
                ref = ef["configMapRef"]["name"]
                if check(f"k8s {cname}: ConfigMap {ref} exists", ref in cms):
                    env.update({k: (str(v), f"ConfigMap {ref}") for k, v in cms[ref].items()})
            if "secretRef" in ef:
                ref = ef["secretRef"]["name"]
                if check(
                    f"k8s {cname}: Secret {ref} exists",
                    ref in secrets or ef["secretRef"].get("optional"),
                ):
                    env.update({k: (v, f"Secret {ref}") for k, v in secrets.get(ref, {}).items()})
        for e in ct.get("env", []):
            vf = e.get("valueFrom")
            if vf is None:
                env[e["name"]] = (str(e.get("value", "")), "env")
            elif "secretKeyRef" in vf:
                r = vf["secretKeyRef"]
                present = r["key"] in secrets.get(r["name"], {})
                check(
                    f"k8s {cname}: {e['name']} from Secret {r['name']} key {r['key']} exists (or is optional)",
                    present or r.get("optional") is True,
                )
                if present:
                    env[e["name"]] = (secrets[r["name"]][r["key"]], f"secretKeyRef {r['name']}")
            elif "configMapKeyRef" in vf:
                r = vf["configMapKeyRef"]
                if check(
                    f"k8s {cname}: {e['name']} from ConfigMap {r['name']} key {r['key']}",
                    r["key"] in cms.get(r["name"], {}),
                ):
                    env[e["name"]] = (str(cms[r["name"]][r["key"]]), "env")
            elif "fieldRef" in vf:
                env[e["name"]] = (
                    "placeholder-" + vf["fieldRef"]["fieldPath"].replace(".", "-"),
                    "env",
                )
        argv = [str(x) for x in (ct.get("command") or []) + (ct.get("args") or [])]
        check(f"k8s {cname}: names its program in command", bool(ct.get("command")))
        rec = check_container("k8s", cname, argv or IMAGE_CMD, env, {"env"})
        if rec is None:
            continue
        rec["workload"] = w
        csc = ct.get("securityContext", {})
        check(
            f"k8s {cname}: restricted pod security (non-root, no escalation, no capabilities, seccomp)",
            (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")) is True
            and csc.get("allowPrivilegeEscalation") is False
            and "ALL" in csc.get("capabilities", {}).get("drop", [])
            and "RuntimeDefault"
            in (
                csc.get("seccompProfile", {}).get("type"),
                psc.get("seccompProfile", {}).get("type"),
            ),
        )
        res = ct.get("resources", {})
        check(
            f"k8s {cname}: resource requests and memory limit",
            bool(res.get("requests")) and "memory" in res.get("limits", {}),
        )
        if rec["prog"] in LONG_RUNNING:
            port = rec["dump"].get("http.port", "")
            check(
                f"k8s {cname}: http.port fixed and bound to 0.0.0.0",
                port.isdigit() and int(port) > 0 and rec["dump"].get("http.bind") == "0.0.0.0",
                f"http.port={port} http.bind={rec['dump'].get('http.bind')}",
            )
            ports = {str(p.get("name")): str(p["containerPort"]) for p in ct.get("ports", [])}
            check(
                f"k8s {cname}: declares containerPort = http.port",
                port in ports.values(),
                f"{ports}",
            )
            for probe in ("readinessProbe", "livenessProbe"):
                hg = (ct.get(probe) or {}).get("httpGet", {})
                pport = str(hg.get("port"))
                pport = ports.get(pport, pport)
                check(
                    f"k8s {cname}: {probe} GET /healthz on http.port",
                    hg.get("path") == "/healthz" and pport == port,
                    f"{hg}",
                )
            ann = pod["metadata"].get("annotations", {})
            check(
                f"k8s {cname}: prometheus.io/port annotation = http.port",
                ann.get("prometheus.io/port") == port,
                f"{ann.get('prometheus.io/port')}",
            )
            rec["ports"] = ports
check_shared("k8s")
check("k8s: every crmsync container runs one image", len(k8s_images) == 1, f"{k8s_images}")

kc = [c for c in containers if c["deployment"] == "k8s"]
for prog in (
    "crmsync-sync-consumer",
    "crmsync-prospect-producer",
    "crmsync-crm-producer",
    "crmsync-activity-producer",
):
    check(f"k8s: runs {prog}", any(c["prog"] == prog for c in kc))
kjobs = [
    c for c in kc if c["prog"] == "crmsync-admin" and c["positional"][:2] == ["topics", "create"]
]
check(
    "k8s: a Job running crmsync-admin topics create",
    len(kjobs) == 1 and kjobs[0]["workload"]["kind"] == "Job",
)
if kjobs:
    kparts = topic_checks("k8s", kc, kjobs[0])
pdbs = [d for d in objs if d["kind"] == "PodDisruptionBudget"]
svcs = [d for d in objs if d["kind"] == "Service"]
for c in kc:
    w = c["workload"]
    labels = w["spec"]["template"]["metadata"].get("labels", {})
    if c["prog"] == "crmsync-sync-consumer":
        reps = w["spec"].get("replicas", 1)
        check(
            f"k8s {c['name']}: several replicas, no more than partitions",
            1 < reps <= (kparts if kjobs else reps),
            f"replicas {reps}",
        )
        check(
            f"k8s {c['name']}: a PodDisruptionBudget selects its pods",
            any(
                labels_match(p["spec"].get("selector", {}).get("matchLabels"), labels) for p in pdbs
            ),
        )
        ru = w["spec"].get("strategy", {}).get("rollingUpdate", {})
        check(
            f"k8s {c['name']}: rolling update without surge (one replica at a time)",
            str(ru.get("maxSurge")) == "0",
            f"{ru}",
        )
    if c["prog"] in ("crmsync-prospect-producer", "crmsync-crm-producer"):
        check(
            f"k8s {c['name']}: a singleton replaced with Recreate",
            w["spec"].get("replicas", 1) == 1
            and w["spec"].get("strategy", {}).get("type") == "Recreate",
        )
    if c["prog"] == "crmsync-activity-producer":
        mine = [s for s in svcs if labels_match(s["spec"].get("selector"), labels)]
        ok = bool(mine) and all(
            str(p.get("targetPort")) in c.get("ports", {})
            or str(p.get("targetPort")) == c["dump"].get("http.port")
            for s in mine
            for p in s["spec"]["ports"]
        )
        tp = [str(p.get("targetPort")) for s in mine for p in s["spec"]["ports"]]
        ok = ok and all(c["ports"].get(t, t) == c["dump"].get("http.port") for t in tp)
        check(
            f"k8s {c['name']}: the ingest Service routes to its http.port", ok, f"targetPorts {tp}"
        )
        check(
            f"k8s {c['name']}: the activity pull (a cursor) is off with several replicas",
            w["spec"].get("replicas", 1) == 1 or c["dump"].get("pull.enabled") == "false",
        )

# ------------------------------------------------------------------ systemd


def unit_parse(path):
    sec, out = None, {}
    for line in open(path):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("["):
            sec = s.strip("[]")
            out.setdefault(sec, [])
            continue
        k, _, v = s.partition("=")
        out.setdefault(sec, []).append((k.strip(), v.strip()))
    return out


units = sorted(glob.glob(os.path.join(SYSTEMD_DIR, "*.service")))
examples = os.path.join(SYSTEMD_DIR, "examples")
unit_progs = set()
for u in units:
    name = os.path.basename(u)
    svc = dict(unit_parse(u).get("Service", []))
    allkv = unit_parse(u).get("Service", [])
    check(f"systemd {name}: a template unit", name.endswith("@.service"))
    exe = shlex.split(svc.get("ExecStart", ""))
    prog = os.path.basename(exe[0]) if exe else ""
    unit_progs.add(prog)
    check(
        f"systemd {name}: ExecStart program {prog} exists",
        prog in PROGRAMS and os.access(os.path.join(BIN, prog), os.X_OK),
    )
    check(f"systemd {name}: reads /etc/crmsync/%i.conf", "/etc/crmsync/%i.conf" in exe)
    check(
        f"systemd {name}: non-root user",
        svc.get("User") not in (None, "", "root", "0") or svc.get("DynamicUser") == "yes",
    )
    check(
        f"systemd {name}: NoNewPrivileges and ProtectSystem=strict",
        svc.get("NoNewPrivileges") == "yes" and svc.get("ProtectSystem") == "strict",
    )
    if prog in LONG_RUNNING:
        check(f"systemd {name}: Restart=on-failure", svc.get("Restart") == "on-failure")
    # the example instance config: examples/<name without crmsync- and @.service>.conf
    inst = name[len("crmsync-") : -len("@.service")]
    conf = os.path.join(examples, inst + ".conf")
    if check(f"systemd {name}: example instance config examples/{inst}.conf", os.path.exists(conf)):
        env = {}
        for k, v in allkv:
            if k == "EnvironmentFile":
                f = os.path.basename(v.lstrip("-"))
                src = os.path.join(examples, "common.env" if f == "common.env" else "secrets.env")
                label = "common.env" if f == "common.env" else "secrets.env"
                if os.path.exists(src):
                    env.update({kk: (vv, label) for kk, vv in env_file_parse(src).items()})
        argv = [prog] + [conf if a == "/etc/crmsync/%i.conf" else a for a in exe[1:]]
        check_container("systemd", name, argv, env, set())
check_shared("systemd")
for prog in LONG_RUNNING | {"crmsync-admin"}:
    check(f"systemd: a unit for {prog}", prog in unit_progs)
if shutil.which("systemd-analyze"):
    with tempfile.TemporaryDirectory() as tmp:
        for u in units:
            name = os.path.basename(u)
            text = open(u).read().replace("/usr/local/bin/", BIN.rstrip("/") + "/")
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
            inst = os.path.join(tmp, name.replace("@.service", "@check.service"))
            r = subprocess.run(
                ["systemd-analyze", "verify", "--man=no", inst], capture_output=True, text=True
            )
            noise = [
                l for l in (r.stdout + r.stderr).splitlines() if name in l or "check.service" in l
            ]
            check(
                f"systemd {name}: systemd-analyze verify",
                r.returncode == 0 and not noise,
                "; ".join(noise) or r.stderr.strip(),
            )
else:
    print("skip systemd-analyze verify: not installed")

# ------------------------------------------------------------------ env files, docs

for path in sorted(glob.glob(os.path.join(DEPLOY, "**", "*.env*"), recursive=True)):
    try:
        kv = env_file_parse(path)
    except ValueError as e:
        check(f"{rel(path)}: KEY=VALUE lines", False, str(e))
        continue
    bad = []
    for k, v in kv.items():
        if k.startswith("CRMSYNC_KAFKA_"):
            ok, err = rdkafka_accepts(kafka_key(k)[6:], v or "x")
            if not ok:
                bad.append(f"{k}: {err}")
        elif k not in ALL_ENV_NAMES:
            bad.append(f"{k} is no program's option")
    check(
        f"{rel(path)}: every variable is an option of some program ({len(kv)})",
        not bad,
        "; ".join(bad),
    )

doc = os.path.join(SRC, "docs", "DEPLOY.md")
if check("docs/DEPLOY.md exists", os.path.exists(doc)):
    text = open(doc).read()
    for topic, pat in [
        ("partitions vs replicas", r"^#+ .*Partitions and replicas"),
        ("topic settings", r"^#+ .*[Tt]opic"),
        ("sizing", r"^#+ .*Sizing"),
        ("upgrades", r"^#+ .*Upgrad"),
        ("replay", r"^#+ .*[Rr]eplay"),
        ("managed Kafka with SASL/SSL", r"^#+ .*(SASL|managed)"),
    ]:
        check(f"docs/DEPLOY.md: a section on {topic}", re.search(pat, text, re.M) is not None)
    names = re.findall(r'"(crmsync\.[a-z-]+)"', topics_c)
    check(
        "docs/DEPLOY.md: names every topic of cs_topics.c",
        names and all(n in text for n in names),
        f"{[n for n in names if n not in text]}",
    )

print(f"{npass} passed, {nfail} failed")
sys.exit(1 if nfail else 0)
PYTHON
