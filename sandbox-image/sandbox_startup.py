"""Runs at every interpreter start (through sandbox_startup.pth): seeds matplotlib's font cache.

matplotlib only uses a writable MPLCONFIGDIR, and the root filesystem is read-only, so the cache
built into the image is copied into the tmpfs one; otherwise every start would rebuild it.
"""

import os

SEED_DIR = "/opt/sandbox/mplconfig"


def _seed_matplotlib_cache() -> None:
    target = os.environ.get("MPLCONFIGDIR")
    if not target or os.path.realpath(target) == SEED_DIR:
        return
    try:
        missing = [n for n in os.listdir(SEED_DIR) if not os.path.exists(os.path.join(target, n))]
        if not missing:
            return
        import shutil

        os.makedirs(target, mode=0o700, exist_ok=True)
        for name in missing:
            shutil.copyfile(os.path.join(SEED_DIR, name), os.path.join(target, name))
    except OSError:
        pass


_seed_matplotlib_cache()
