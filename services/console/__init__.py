"""The console: a server-rendered Chinese web application and the HTTP/JSON API for integrators.

It holds no privileges of its own: every gRPC call carries the logged-in user's credentials (see identity.py).
"""
