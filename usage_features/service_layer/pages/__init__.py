"""The web pages' use cases: one function per page, each returning one typed result that the
page's handler renders (:mod:`usage_features.http.web`). They read through
:class:`~usage_features.service_layer.pages.data.PageData`, which keeps what they read in
memory until its file changes."""
