"""The model runtime: `compute`, the one thread all model compute runs on, and `embedded`,
the embedded models (GGUF files assembled from their PyPI parts) and the llama.cpp chat
adapter. Nothing is imported here, so the CLI's signal handler can import `compute` without
loading LangChain."""
