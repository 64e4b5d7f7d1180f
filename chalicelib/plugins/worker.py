"""A sandbox worker process: holds one account's compiled plugin contexts and runs invocations.

Started by sandbox.py as `python -m chalicelib.plugins.worker <read fd> <write fd>` with an
environment stripped of every secret. It imports only the V8 runtime and its cache: no settings,
database or AWS code. Host capability calls are sent back to the API process, which checks and
performs them. If a plugin crashes or wedges V8, only this process dies.
"""

from __future__ import annotations

import sys
from typing import Any

from chalicelib.errors import PluginFailed
from chalicelib.plugins.cache import CacheKey, CompileCache
from chalicelib.plugins.ipc import Channel, ChannelClosed
from chalicelib.plugins.runtime import BundleInvalid, CompiledPlugin, HostFailed, HostRefused


class Worker:
    def __init__(self, channel: Channel, cache: CompileCache) -> None:
        self.channel = channel
        self.cache = cache

    def serve(self) -> None:
        while True:
            try:
                message = self.channel.receive()
            except ChannelClosed:
                return
            op = message.get("op")
            if op == "invoke":
                self.invoke(message)
            elif op == "check":
                self.channel.send(self.check(message))
            elif op == "discard":
                self.cache.discard_plugin(message["accountId"], message["pluginId"])
                self.channel.send({"op": "ok"})
            elif op == "stats":
                stats = self.cache.stats()
                self.channel.send(
                    {
                        "op": "stats",
                        "entries": stats.entries,
                        "sizeBytes": stats.size_bytes,
                        "hits": stats.hits,
                        "misses": stats.misses,
                        "evictions": stats.evictions,
                    }
                )
            else:
                self.channel.send({"op": "failed", "reason": "error", "message": f"unknown operation {op!r}"})

    def check(self, message: dict[str, Any]) -> dict[str, Any]:
        """Compile a bundle once (upload validation) and throw the context away."""
        try:
            CompiledPlugin.compile(
                message["bundle"],
                label=message["label"],
                entry_points=message["entryPoints"],
                timeout_ms=message["timeoutMs"],
            ).close()
        except BundleInvalid as exc:
            return {"op": "invalid", "message": str(exc)}
        return {"op": "ok"}

    def invoke(self, message: dict[str, Any]) -> None:
        """Run one invocation and send its answer; then let the context drain (see CompiledPlugin.drain)."""
        key = CacheKey(*message["key"])
        entry_point = message["entryPoint"]

        def compile_bundle() -> CompiledPlugin:
            self.channel.send({"op": "need_bundle"})
            bundle = self.channel.receive()["bundle"]
            return CompiledPlugin.compile(
                bundle, label=message["label"], entry_points=[entry_point], timeout_ms=message["timeoutMs"]
            )

        try:
            with self.cache.lease(key, compile_bundle) as (plugin, compiled):
                try:
                    result = plugin.invoke(
                        entry_point,
                        message["input"],
                        timeout_ms=message["timeoutMs"],
                        capabilities=message["capabilities"],
                        host=self.host,
                    )
                except PluginFailed as exc:
                    self.channel.send({"op": "failed", "reason": exc.reason, "message": exc.message})
                else:
                    self.channel.send(
                        {
                            "op": "result",
                            "output": result.output,
                            "durationMs": result.duration_ms,
                            "hostCalls": result.host_calls,
                            "compiled": compiled,
                        }
                    )
                plugin.drain()
        except PluginFailed as exc:  # compiling failed
            self.channel.send({"op": "failed", "reason": exc.reason, "message": exc.message})
        except BundleInvalid as exc:
            self.channel.send(
                {"op": "failed", "reason": "error", "message": f"{message['label']} no longer loads: {exc}"}
            )

    def host(self, op: str, args: list[Any], remaining_s: float) -> Any:
        """A host function call, performed by the API process."""
        self.channel.send({"op": "host", "call": op, "args": args, "remainingS": remaining_s})
        answer = self.channel.receive()
        if answer.get("ok"):
            return answer.get("value")
        error = HostRefused if answer.get("name") == HostRefused.js_name else HostFailed
        raise error(str(answer.get("message", "the host refused")))


def main(argv: list[str]) -> int:
    channel = Channel(int(argv[1]), int(argv[2]))
    try:
        Worker(channel, CompileCache(max_entries=int(argv[3]), max_bytes=int(argv[4]))).serve()
    except KeyboardInterrupt:
        pass
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
