"""The transformer engine (``--engine transformer``): SmolLM2-135M-Instruct on the
CPU behind the same routes as the n-gram engine. Imports torch, so nothing outside
this package imports it unless that engine is chosen (``refserver.engines``)."""
