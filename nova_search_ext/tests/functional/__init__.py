# Nova patches eventlet (or sets up native threading) when its test package
# is imported; that must happen before any other Nova module is imported.
import nova.tests.functional  # noqa
