"""What several connector subpackages share; not a connector itself (nothing registers it).

* :mod:`~crmbridge.connectors.common.files`: the base of the file connectors (CSV, Excel,
  JSON Lines) and the bad-record reporting the Access reader uses too.
"""
