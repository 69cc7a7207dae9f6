"""gpt2numba serve."""
