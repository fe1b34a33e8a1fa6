"""Names shared by the SDK, its loaders and its CLI."""

BACKEND_CONFIG_PATH_ENV_VAR_NAME = "BACKEND_CONFIG_FILE_PATH"
PACKAGING_CONFIG_NAME = "packflow.yaml"
REQUIREMENTS_TEXT_NAME = "requirements.txt"
