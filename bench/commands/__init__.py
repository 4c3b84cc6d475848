"""One module per `bench` subcommand, each exposing register(subparsers).

register() only declares arguments: heavy imports (torch, servers, locust) belong inside the
handler, so that `bench --help` and every other subcommand stay fast and side-effect free.
"""
