"""The imperative shell: log stores, the append loop and the documented API objects."""
