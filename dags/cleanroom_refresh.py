"""Airflow DAGs: one cleanroom refresh per source listed in cleanroom.yaml.

The config file is found through the CLEANROOM_CONFIG environment variable (default:
cleanroom.yaml in the working directory). Everything else lives in the `cleanroom` package.
"""

from cleanroom.dagfactory import dags_from_config

globals().update(dags_from_config())
