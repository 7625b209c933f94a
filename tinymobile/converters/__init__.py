"""Readers that turn other frameworks' MobileNet v1 files into a :class:`~tinymobile.network.Network`."""
