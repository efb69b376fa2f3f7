"""The project's name, one-line description and version (the command line's help shows them)."""

# As typed when the project was made, however long: ruff's formatter and line-length check leave them be.
NAME = {{ cookiecutter.project_name | python_string }}  # fmt: skip
DESCRIPTION = {{ cookiecutter.description | python_string }}  # fmt: skip
__version__ = "0.1.0"
