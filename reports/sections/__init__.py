"""One module per section of the report; each exposes `section(views, ...) -> Section`."""
