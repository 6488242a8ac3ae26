"""verify-parity: pair datasets, verification metrics, parity runs and reports."""
