"""MAP entry point: the image runs ``python3 /opt/holoscan/app`` (app.json's command, as holoscan-cli packages a
Python application folder). The folder holds the ``app`` and ``operators`` packages; this runs ``python -m app``."""

import runpy

runpy.run_module("app", run_name="__main__", alter_sys=True)
