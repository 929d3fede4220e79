"""The build: the config made into one typed model (model.py) once, then files written from it
(make.py). See docs/architecture.md."""
