"""A stage runs once per inputs; a finished stage is read back, an interrupted one runs again."""

import contextlib

from mge.runs.cache import DONE, StageCache, stage_key


def test_a_finished_stage_is_read_back_and_other_inputs_run_again(tmp_path):
    cache, calls = StageCache(tmp_path), []

    def compute(folder):
        calls.append(folder)
        (folder / "out.txt").write_text("made")
        return {"accuracy": 0.9}

    first = cache.run("train", {"seed": 0, "epochs": 8}, compute)
    again = cache.run("train", {"epochs": 8, "seed": 0}, compute)  # key order does not matter
    other = cache.run("train", {"seed": 1, "epochs": 8}, compute)
    assert first == ({"accuracy": 0.9}, calls[0], False)
    assert again == ({"accuracy": 0.9}, calls[0], True)
    assert other[2] is False and other[1] != first[1] and len(calls) == 2
    assert first[1] == tmp_path / "train" / stage_key({"seed": 0, "epochs": 8})


def test_an_interrupted_stage_runs_again_in_its_own_folder(tmp_path):
    cache, attempts = StageCache(tmp_path), []

    def flaky(folder):
        attempts.append(sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")))
        (folder / "partial").write_text("x")
        if len(attempts) == 1:
            raise KeyboardInterrupt
        return {"done": True}

    with contextlib.suppress(KeyboardInterrupt):
        cache.run("generate", {"n": 100}, flaky)
    report, folder, reused = cache.run("generate", {"n": 100}, flaky)
    assert attempts == [[], ["partial"]]  # the second run found the first one's files to resume from
    assert report == {"done": True} and not reused and (folder / DONE).is_file()


def _slow_stage(root, started, results):
    import time

    def compute(folder):
        started.put("computing")
        time.sleep(1.0)
        return {"value": 42}

    results.put(StageCache(root).run("shared", {"k": 1}, compute)[2])


def test_parallel_jobs_needing_one_stage_compute_it_once(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    started, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_slow_stage, args=(tmp_path, started, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert sorted(results.get(timeout=5) for _ in procs) == [False, True]  # one computed, one reused
    assert started.qsize() == 1
