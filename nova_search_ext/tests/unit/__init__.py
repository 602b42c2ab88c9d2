# As in Nova's own unit tests: concurrency set-up first, then the objects.
from nova import monkey_patch ; monkey_patch.patch()  # noqa

from nova import objects  # noqa: E402

objects.register_all()
