"""CNN Classroom's engine: datasets, models, training, the model registry and the CLI.

Importing `core` is cheap: TensorFlow is imported only by the functions that need it, so the
dashboard's home page and `python -m core list` start fast.
"""
