"""`python3 -m sglang.launch_server ...`: the lmscale engine stand-in playing SGLang 0.5.3."""

from lmscale.sim.standin.main import sglang_main

if __name__ == "__main__":
    raise SystemExit(sglang_main())
