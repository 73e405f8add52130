"""Column-level masking for cleanroom: policies, transforms, detectors and fake values.

Nothing in this package imports Airflow. It works on Arrow arrays and plain schema
descriptions, so the same code runs in a DAG task, in the CLI and in tests.
"""
