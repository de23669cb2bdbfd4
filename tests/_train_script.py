"""A stand-in training script for tests/test_cli_run.py, run by ``schedy run``.

    python _train_script.py MODE [--name value]...

Each ``--name value`` option is read as JSON when it parses, else kept as a
string; ``%h`` passes the hyperparameters this way. ``--sleep S`` (seconds of
"training"), ``--barrier DIR``, ``--until FILE``, ``--ckpt DIR`` and
``--mode MODE`` (overrides MODE, so a job can choose it) control the script
and are not hyperparameters. MODE says what it prints:

    train  noise, then loss = sum((v - 1) ** 2) over the other numeric options, as "name value" lines
    json   a decoy block, then loss and the option names as one JSON object over several lines
    echo   one JSON object: {"argv": its arguments, "env": the SCHEDY_* variables and PYTHONUNBUFFERED}
    none   noise and no results block
    bad    a block whose second line is malformed
    fail   a valid block, then exit status 3
    wait   prints "ready", then sleeps; on SIGINT, SIGTERM or SIGUSR1 prints "got SIGINT" (or the other), then a
           results block holding "checkpoint saved-at-<signal>" (what it saved in the grace period), exits 1
    deaf   prints "ready", ignores SIGINT and SIGTERM and sleeps: only SIGKILL stops it
    pbt    one PBT segment: loads the weight saved at model_path in $SCHEDY_RESULTS (0.0 in generation 0),
           moves it towards 1 by lr, saves it in --ckpt DIR as <job id>.json, reports loss and model_path

--barrier DIR: wait (up to 60 s) until scripts started by two different
parent processes have reached this point, so both `schedy run` workers are
known to be working. --until FILE: print "ready", then wait for FILE to exist
before reporting.
"""

import json
import os
import signal
import sys
import time


def options(argv):
    out = {}
    for name, raw in zip(argv[::2], argv[1::2]):
        assert name.startswith("--"), f"expected --name value pairs, got {argv}"
        try:
            out[name[2:]] = json.loads(raw)
        except ValueError:
            out[name[2:]] = raw
    return out


def wait_for(predicate, what):
    deadline = time.monotonic() + 60
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"_train_script: gave up waiting for {what}")
        time.sleep(0.01)


def block(lines):
    print("--- RESULTS ---")
    for line in lines:
        print(line)
    print("--- END RESULTS ---")


def main(mode, *argv):
    opts = options(list(argv))
    control = {k: opts.pop(k) for k in ("sleep", "barrier", "until", "ckpt", "mode") if k in opts}
    mode = control.get("mode", mode)
    print(f"starting {mode} with {opts}")
    print("epoch 1: this line is noise, and so is the next one")
    print("--- END RESULTS ---")  # an end marker outside any block is noise too
    if "barrier" in control:
        os.makedirs(control["barrier"], exist_ok=True)
        open(os.path.join(control["barrier"], str(os.getppid())), "w").close()
        wait_for(lambda: len(os.listdir(control["barrier"])) >= 2, "a second worker")
    time.sleep(control.get("sleep", 0))
    if "until" in control:
        print("ready")
        wait_for(lambda: os.path.exists(control["until"]), control["until"])
    loss = sum((v - 1) ** 2 for v in opts.values() if isinstance(v, (int, float)) and not isinstance(v, bool))

    if mode == "train":
        block([f"loss {loss!r}", "note  a bare string "])
    elif mode == "json":
        block(['{"loss": 1e9}'])
        block(["{", f'  "loss": {loss!r},', '  "names": ' + json.dumps(sorted(opts)), "}"])
    elif mode == "echo":
        # SCHEDY_TEST_* configure the test suite's servers (.ci/run sets them), not what schedy run passes.
        env = {
            k: v
            for k, v in os.environ.items()
            if k.startswith("SCHEDY_") and not k.startswith("SCHEDY_TEST_") or k == "PYTHONUNBUFFERED"
        }
        block([json.dumps({"argv": list(argv), "env": env})])
    elif mode == "none":
        print("done, but no results")
    elif mode == "bad":
        block(["loss 0.5", "accuracy", "other 1"])
    elif mode == "fail":
        block(["loss 0.5"])
        sys.exit(3)
    elif mode in ("wait", "deaf"):

        def stop(signum, frame):
            print(f"got {signal.Signals(signum).name}")
            block([f"checkpoint saved-at-{signal.Signals(signum).name}"])
            sys.exit(1)

        handler = signal.SIG_IGN if mode == "deaf" else stop
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            signal.signal(s, handler)
        print("ready")
        time.sleep(60)
        sys.exit("_train_script: was not stopped")
    elif mode == "pbt":
        start = json.loads(os.environ["SCHEDY_RESULTS"]).get("model_path")
        w = json.load(open(start)) if start else 0.0
        w += opts["lr"] * (1 - w)
        path = os.path.join(control["ckpt"], os.environ["SCHEDY_JOB"] + ".json")
        json.dump(w, open(path, "w"))
        block(
            [
                json.dumps(
                    {
                        "loss": (1 - w) ** 2,
                        "model_path": path,
                        "loaded": start,
                        "generation": os.environ["SCHEDY_GENERATION"],
                        "member": os.environ["SCHEDY_MEMBER"],
                        "parent": os.environ["SCHEDY_PARENT"],
                    }
                )
            ]
        )
    else:
        sys.exit(f"_train_script: unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
