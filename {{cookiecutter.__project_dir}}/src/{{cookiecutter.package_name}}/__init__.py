"""The project's name, one-line description and version (the command line's help shows them)."""

NAME = {{ cookiecutter.project_name | python_string }}
DESCRIPTION = {{ cookiecutter.description | python_string }}
__version__ = "0.1.0"
