"""Lava processes and process models of dsatgo-deploy.

Kept in a package of their own on purpose: to find process models, Lava's
compiler imports every module of the package that defines a process and
executes every .py file of its folder, on every compile. Only process files
belong here, and they must import cleanly and cheaply.
"""
