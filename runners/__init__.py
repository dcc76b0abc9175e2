import os

# Runners print their own progress; transformers warns at import about optional vision backends we never use.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
