"""Is a code server up, and did its code load? Asked over gRPC from one long-lived process.

A gRPC health call costs about 1 ms from here; `dagster api grpc-health-check` costs 2 s and
100 MB per call because it imports Dagster. So the supervisor keeps one checker with a cached
channel per server, and never imports Dagster itself.
"""

from __future__ import annotations

import json


def _list_repositories_reply_class():
    """A message class for Dagster's `api.ListRepositoriesReply`, built without importing Dagster.

    The supervisor only needs one string field from one RPC; importing Dagster for it would cost
    seconds of CPU while the code servers are starting on the same cores.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(
        name="dataplatform_list_repositories_probe.proto", package="api", syntax="proto3"
    )
    reply = proto.message_type.add(name="ListRepositoriesReply")
    reply.field.add(
        name="serialized_list_repositories_response_or_error",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()  # private pool: never clashes with Dagster's own
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("api.ListRepositoriesReply"))


class HealthChecker:
    """One long-lived checker: a cached gRPC channel per server.

    Liveness uses the standard gRPC health service, which Dagster's server registers under
    "DagsterApi". When a server first answers we also call Dagster's ListRepositories once: it
    returns a serialized error instead of repositories when the location's code failed to load.
    """

    def __init__(self):
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        self._grpc = grpc
        self._pb2 = health_pb2
        self._stub_cls = health_pb2_grpc.HealthStub
        self._reply_cls = _list_repositories_reply_class()
        self._channels: dict[tuple[str, int], object] = {}

    def _channel(self, host: str, port: int):
        key = (host, port)
        if key not in self._channels:
            self._channels[key] = self._grpc.insecure_channel(
                f"{host}:{port}", options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
            )
        return self._channels[key]

    def forget(self, host: str, port: int) -> None:
        """Drop the channel after a restart so we never talk to a stale connection."""
        channel = self._channels.pop((host, port), None)
        if channel is not None:
            channel.close()

    def is_serving(self, host: str, port: int, timeout: float) -> bool:
        stub = self._stub_cls(self._channel(host, port))
        try:
            response = stub.Check(
                self._pb2.HealthCheckRequest(service="DagsterApi"), timeout=timeout
            )
        except self._grpc.RpcError:
            return False
        return response.status == self._pb2.HealthCheckResponse.SERVING

    def load_error(self, host: str, port: int, timeout: float = 30.0) -> str | None:
        """None if the location's definitions loaded, else the error message it serves."""
        call = self._channel(host, port).unary_unary(
            "/api.DagsterApi/ListRepositories",
            request_serializer=lambda _: b"",  # ListRepositoriesRequest has no fields
            response_deserializer=self._reply_cls.FromString,
        )
        reply = call(None, timeout=timeout)
        payload = json.loads(reply.serialized_list_repositories_response_or_error)
        if payload.get("__class__") != "SerializableErrorInfo":
            return None
        # The innermost cause is the user's own error (e.g. "ImportError: No module named x");
        # the outer layers are Dagster's wrapping, with the full traceback shown in the UI.
        err = payload
        while isinstance(err.get("cause"), dict):
            err = err["cause"]
        lines = str(err.get("message", "")).strip().splitlines()
        return lines[0] if lines else "unknown load error"

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
