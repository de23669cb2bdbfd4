"""The Kubernetes recipe of docs/clusters.md, checked without a cluster: every document of its manifest against
Kubernetes' own API schemas (kubernetes-validate, strict: a field the API does not know is an error), and by hand
what the schemas cannot say (they list no enum values): the completion mode, the restart policy, the Secret the
Job reads, the worker's command, the database, and the failure policy that keeps a stopped worker from failing
the Job. Broken copies of the manifest prove that each check can fail.
"""

import copy
import shlex

import browser
import pytest
import recipes

try:
    import kubernetes_validate
    import yaml
    from kubernetes_validate.utils import ValidationError, all_versions, latest_version
except ImportError:  # the `test` extra installs it; without it the tests skip (or fail in CI)
    kubernetes_validate = None

# The oldest Kubernetes docs/clusters.md names (backoffLimitPerIndex is on by default from 1.29); its schemas must
# accept the manifest too (1.28's still require onPodConditions in every rule of a podFailurePolicy).
OLDEST = "1.29.0"
GRACE = 60  # seconds at least from SIGTERM to SIGKILL, to save a checkpoint and give the job back
OBJECT_STORAGE = ("s3://", "gs://", "az://")
SIGTERM_STATUS = 143  # 128 + 15: the page's worker.py after it gave its job back


@pytest.fixture
def manifest():
    """The manifest's documents, parsed (skipped without kubernetes-validate, except in CI)."""
    if kubernetes_validate is None:
        browser.unavailable("kubernetes-validate is not installed (pip install -e '.[test]')")
    return list(yaml.safe_load_all(recipes.recipe("kubernetes/job.yaml")))


def the(documents, kind):
    found = [d for d in documents if d and d.get("kind") == kind]
    assert len(found) == 1, f"the manifest has {len(found)} {kind}s"
    return found[0]


def first_rule(rules, exit_code, conditions=(), container="worker"):
    """The rule of a podFailurePolicy that decides about a pod whose container ``container`` ended with
    ``exit_code`` and which has the True ``conditions``, as the Job controller evaluates them: in order, the
    first that matches; None when none does (the failure then counts)."""
    for rule in rules:
        codes = rule.get("onExitCodes")
        if codes is not None:
            if exit_code == 0 or codes.get("containerName") not in (None, container):
                continue
            if (exit_code in codes["values"]) == (codes["operator"] == "In"):
                return rule
        for pattern in rule.get("onPodConditions") or ():
            if pattern["type"] in conditions and pattern.get("status", "True") == "True":
                return rule
    return None


def problems(documents, version):
    """Why the manifest would not run as docs/clusters.md says on Kubernetes ``version``; empty if it would."""
    found = []
    for document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except ValidationError as e:
            found.append(f"{document['kind']}: {'.'.join(map(str, e.path))}: {e.message}")
    if found:
        return found
    secret, job = the(documents, "Secret"), the(documents, "Job")
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    if spec.get("completionMode") != "Indexed":
        found.append(f"completionMode is {spec.get('completionMode')!r}, not Indexed")
    if not 1 <= spec.get("parallelism", 1) <= spec["completions"]:
        found.append("parallelism must be between 1 and completions")
    if pod.get("restartPolicy") != "Never":  # backoffLimitPerIndex and podFailurePolicy require it
        found.append(f"restartPolicy is {pod.get('restartPolicy')!r}, not Never")
    if "backoffLimitPerIndex" not in spec:
        found.append("no backoffLimitPerIndex: a failing index would use up the whole Job's backoffLimit")
    if pod.get("terminationGracePeriodSeconds", 30) < GRACE:
        found.append(f"terminationGracePeriodSeconds is under {GRACE} s: too little to save a checkpoint")
    (container,) = pod["containers"]
    rules = spec.get("podFailurePolicy", {}).get("rules", [])
    for rule in rules:
        if rule["action"] not in ("FailJob", "FailIndex", "Ignore", "Count"):
            found.append(f"unknown action {rule['action']!r}")
        if "onExitCodes" in rule and rule["onExitCodes"]["operator"] not in ("In", "NotIn"):
            found.append(f"unknown operator {rule['onExitCodes']['operator']!r}")
        if rule.get("onExitCodes", {}).get("containerName") not in (None, container["name"]):
            found.append(f"a rule names the container {rule['onExitCodes']['containerName']!r}")
    # A worker stopped (evicted with or without time to give its job back, or sent SIGTERM otherwise) is not
    # a failure; a worker whose training raised (1) or that was killed outside a disruption (137) is one.
    for code, conditions, ignored in (
        (SIGTERM_STATUS, ["DisruptionTarget"], True),
        (137, ["DisruptionTarget"], True),
        (SIGTERM_STATUS, [], True),
        (1, [], False),
        (137, [], False),
    ):
        rule = first_rule(rules, code, conditions, container["name"])
        if (rule is not None and rule["action"] == "Ignore") != ignored:
            what = f"exit status {code}" + (" and condition " + ", ".join(conditions) if conditions else "")
            found.append(f"a pod with {what} would {'not be ignored' if ignored else 'be ignored'} ({rule})")
    command = container.get("command", []) + container.get("args", [])
    if command[:2] not in (["python", "worker.py"], ["python3", "worker.py"]) or len(command) != 3:
        found.append(f"the container runs {shlex.join(command)!r}, not Python on worker.py EXPERIMENT")
    env = {e["name"]: e for e in container.get("env", [])}
    db = env.get("SCHEDY_DB", {}).get("value", "")
    if not db.startswith(OBJECT_STORAGE):
        found.append(f"SCHEDY_DB is {db!r}: pods on several nodes need object storage")
    pod_name = env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if pod_name != "metadata.name":  # worker.py names itself after it; the host name repeats on a retry
        found.append(f"POD_NAME comes from {pod_name!r}, not the pod's metadata.name")
    keys = {**secret.get("data", {}), **secret.get("stringData", {})}
    refs = [e["valueFrom"]["secretKeyRef"] for e in env.values() if "secretKeyRef" in e.get("valueFrom", {})]
    refs += [{"name": e["secretRef"]["name"], "key": None} for e in container.get("envFrom", []) if "secretRef" in e]
    if not refs:
        found.append("the Job reads nothing from the Secret")
    for ref in refs:
        if ref["name"] != secret["metadata"]["name"]:
            found.append(f"the Job reads the Secret {ref['name']!r}; the manifest's is {secret['metadata']['name']!r}")
        elif ref["key"] is not None and ref["key"] not in keys:
            found.append(f"the Secret has no key {ref['key']!r} (it has {sorted(keys)})")
    return found


def test_the_manifest_is_valid_for_the_newest_kubernetes_and_the_oldest_the_page_names(manifest):
    assert OLDEST in all_versions(), f"this kubernetes-validate has no schemas for {OLDEST}: {all_versions()}"
    for version in (latest_version(), OLDEST):
        assert problems(manifest, version) == [], version


def test_the_image_runs_the_manifests_command_in_the_directory_it_copies_the_worker_to():
    lines = [line.split(None, 1) for line in recipes.recipe("kubernetes/Dockerfile").splitlines() if line.strip()]
    instructions = [(word.upper(), rest.strip()) for word, rest in lines]
    # Schedy from the copy of its source (PyPI's `schedy` is another project), with the object-storage extra.
    (source,) = [rest.split()[-1] for word, rest in instructions if word == "COPY" and rest.split()[0] == "schedy"]
    assert any(word == "RUN" and f'pip install --no-cache-dir "{source}[cloud]"' in rest for word, rest in instructions)
    (workdir,) = [rest for word, rest in instructions if word == "WORKDIR"]
    (copied,) = [rest.split() for word, rest in instructions if word == "COPY" and rest.split()[0] != "schedy"]
    assert copied[-1] in ("./", ".", workdir) and {"worker.py", "train.py"} <= set(copied[:-1])
    if kubernetes_validate is not None:  # the manifest does not move the command to another directory
        pod = the(list(yaml.safe_load_all(recipes.recipe("kubernetes/job.yaml"))), "Job")["spec"]["template"]
        assert pod["spec"]["containers"][0].get("workingDir", workdir) == workdir


def _at(path):
    """The dict or list holding the last key of ``path`` in the Job, and that key; a str names an env variable."""

    def find(job):
        node = job
        for key in path[:-1]:
            if isinstance(key, str) and isinstance(node, list):  # an env variable, by its name
                (node,) = [e for e in node if e["name"] == key]
            else:
                node = node[key]
        return node, path[-1]

    return find


def _set(path, value):
    """A change to the Job: set the field at ``path`` to ``value``."""

    def change(job):
        node, key = _at(path)(job)
        node[key] = value

    return change


def _delete(path):
    def change(job):
        node, key = _at(path)(job)
        del node[key]

    return change


def _rename(path, new):
    def change(job):
        node, key = _at(path)(job)
        node[new] = node.pop(key)

    return change


def _prepend_rule(rule):
    def change(job):
        job["spec"]["podFailurePolicy"]["rules"].insert(0, rule)

    return change


POD = ("spec", "template", "spec")
CONTAINER = (*POD, "containers", 0)
ENV = (*CONTAINER, "env")

BROKEN = {
    "a misspelled field": (_rename(("spec", "backoffLimitPerIndex"), "backoffLimitPerIndx"), "backoffLimitPerIndx"),
    "a misspelled field of the container": (_rename((*CONTAINER, "command"), "comand"), "comand"),
    "a number as a string": (_set((*POD, "terminationGracePeriodSeconds"), "120"), "'120'"),
    "completionMode Indexd": (_set(("spec", "completionMode"), "Indexd"), "not Indexed"),
    "restartPolicy Nevr": (_set((*POD, "restartPolicy"), "Nevr"), "not Never"),
    "no backoffLimitPerIndex": (_delete(("spec", "backoffLimitPerIndex")), "no backoffLimitPerIndex"),
    "a short grace period": (_set((*POD, "terminationGracePeriodSeconds"), 10), "under"),
    "evictions counted": (_set(("spec", "podFailurePolicy", "rules", 0, "action"), "Count"), "DisruptionTarget"),
    "a stopped worker fails the Job": (
        _prepend_rule({"action": "FailJob", "onExitCodes": {"operator": "In", "values": [SIGTERM_STATUS]}}),
        "exit status 143",
    ),
    "failures ignored": (
        _set(("spec", "podFailurePolicy", "rules", 1, "onExitCodes", "operator"), "NotIn"),
        "exit status 1 would be ignored",
    ),
    "a shell": (_set((*CONTAINER, "command"), ["sh", "-c", "python worker.py sweep"]), "not Python on worker.py"),
    "a database on a volume": (_set((*ENV, "SCHEDY_DB", "value"), "/data/schedy-db"), "object storage"),
    "no POD_NAME": (_set((*ENV, "POD_NAME", "valueFrom", "fieldRef", "fieldPath"), "spec.nodeName"), "POD_NAME"),
    "a Secret key misspelled": (
        _set((*ENV, "AWS_ACCESS_KEY_ID", "valueFrom", "secretKeyRef", "key"), "AWS_ACCESS_KEY"),
        "no key 'AWS_ACCESS_KEY'",
    ),
    "another Secret": (
        _set((*ENV, "AWS_SECRET_ACCESS_KEY", "valueFrom", "secretKeyRef", "name"), "s3"),
        "the Secret 's3'",
    ),
}


@pytest.mark.parametrize("broken", BROKEN)
def test_a_broken_manifest_is_refused(manifest, broken):
    change, expected = BROKEN[broken]
    documents = copy.deepcopy(manifest)
    change(the(documents, "Job"))
    found = problems(documents, latest_version())
    assert any(expected in p for p in found), found
