"""Use cases of the console: each asks the services' gRPC APIs what a page shows, or sends what a form says.

They know nothing of HTTP: inputs are plain values (a parsed form), outputs are protobuf messages or small
dataclasses; refusals surface as `backend.Problem` or `forms.FormErrors`.
"""
