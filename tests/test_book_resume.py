"""A `toxlab book` killed hard (SIGKILL) in the middle of a chapter resumes where it stopped: the chapters it
finished are kept, not executed again, and the one it was executing leaves no partial output."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHAPTER = '''# %% tags=["parameters"]
level = "cpu"
seeds = [0]

# %%
import os
import time

time.sleep(float(os.environ.get("{sleep_var}", "0")))
print("done")
'''
RUNNER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from toxlab.book import builder
    builder.NOTEBOOKS = Path(sys.argv[1])
    builder.build("smoke", execute=True, html=False, out=Path(sys.argv[2]), log=lambda m: print(m, flush=True))
""")


def _write_chapters(folder):
    (folder / "params").mkdir(parents=True)
    (folder / "params" / "smoke.yaml").write_text("common:\n  seeds: [0]\n")
    (folder / "01_first.py").write_text(CHAPTER.format(sleep_var="FIRST_SLEEP"))
    (folder / "02_second.py").write_text(CHAPTER.format(sleep_var="SECOND_SLEEP"))


def _run(folder, out, env, wait=True):
    command = [sys.executable, "-c", RUNNER, str(folder), str(out)]
    if wait:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)


@pytest.mark.slow
def test_a_killed_book_resumes_without_redoing_finished_chapters(tmp_path):
    folder, out = tmp_path / "notebooks", tmp_path / "book"
    _write_chapters(folder)
    env = {**os.environ, "SECOND_SLEEP": "120"}
    process = _run(folder, out, env, wait=False)
    for line in process.stdout:  # wait until the second chapter is being executed, then kill everything
        if "executing 02_second at level" in line:
            time.sleep(3)  # let its kernel start and enter the cell
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    first = out / "chapters" / "01_first.ipynb"
    assert first.exists() and not (out / "chapters" / "02_second.ipynb").exists()
    assert not list((out / "chapters").glob("*.tmp"))
    finished_at = first.stat().st_mtime_ns

    result = _run(folder, out, {**os.environ, "SECOND_SLEEP": "0"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "book: kept 01_first as executed (smoke level, seeds 0, commit " in result.stdout
    assert "executing 02_second at level" in result.stdout and "executing 01_first at level" not in result.stdout
    assert first.stat().st_mtime_ns == finished_at
    assert (out / "chapters" / "02_second.ipynb").exists()
