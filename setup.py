"""Package list only; everything else is in pyproject.toml.

The default INT8 calibration set stays at the top of the repository (calib_data/, where
the documentation names it) and is installed as the data package `edgefkd.calib_data`;
pyproject.toml cannot add a package that find() does not see, so it is listed here.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=find_namespace_packages(include=["edgefkd", "edgefkd.*"]) + ["edgefkd.calib_data"],
    package_dir={"edgefkd.calib_data": "calib_data"},
)
