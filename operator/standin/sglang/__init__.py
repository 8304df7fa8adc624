"""Stand-in `sglang` package: only `python3 -m sglang.launch_server` exists, and it runs the
lmscale engine stand-in as SGLang 0.5.3. Installed in the stand-in image only."""
