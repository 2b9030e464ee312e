"""An independent, plain-Python model of the engine, used as the oracle in property tests."""
