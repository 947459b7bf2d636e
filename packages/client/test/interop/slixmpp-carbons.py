#!/usr/bin/python3
"""A client written with slixmpp 1.8 (Debian python3-slixmpp) using its Message Carbons plugin
(xep_0280), for the carbons interop tests of the SDK (packages/client/test/interop-slixmpp.test.ts).

Usage: slixmpp-carbons.py JID PASSWORD HOST PORT SCENARIO

Scenarios (each enables carbons with xep_0280, prints {"kind": "ready"} once online, JSON lines,
then "done"):
  watch  prints every carbon slixmpp's plugin accepts (its carbon_sent and carbon_received
         events, which it raises only for copies from the account's bare JID); ends at a carbon
         whose body is "end".
  send   waits for a message with body "go", then writes its sender two messages, ids "slix-1"
         (body "hello from slixmpp") and "slix-end" (body "end").
"""
import json
import ssl
import sys

from slixmpp import ClientXMPP


def emit(kind, **values):
    print(json.dumps({"kind": kind, **values}, ensure_ascii=False), flush=True)


class Client(ClientXMPP):
    def __init__(self, jid, password, scenario):
        # slixmpp 1.8 binds SCRAM-*-PLUS to tls-unique, which TLS 1.3 lacks: PLAIN, over TLS.
        super().__init__(jid, password, sasl_mech="PLAIN")
        self.scenario = scenario
        for plugin in ("xep_0030", "xep_0297", "xep_0280"):
            self.register_plugin(plugin)
        # The test servers' certificates are self-signed.
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        if scenario == "watch":
            self.add_event_handler("carbon_sent", lambda msg: self.on_carbon("sent", msg))
            self.add_event_handler("carbon_received", lambda msg: self.on_carbon("received", msg))
        else:
            self.add_event_handler("message", self.on_go)

    def on_failed_auth(self, _event):
        print(json.dumps({"error": "failed-auth"}), flush=True)
        self.disconnect()

    async def on_start(self, _event):
        self.send_presence()
        await self.get_roster()
        await self["xep_0280"].enable()
        emit("ready", jid=str(self.boundjid))

    def finish(self):
        print("done", flush=True)
        self.disconnect()

    def on_carbon(self, kind, msg):
        inner = msg["carbon_%s" % kind]
        emit(
            "carbon_" + kind,
            wrapper_from=str(msg["from"]),
            id=inner["id"],
            sender=str(inner["from"]),
            to=str(inner["to"]),
            body=inner["body"],
        )
        if inner["body"] == "end":
            self.finish()

    def on_go(self, msg):
        if msg["body"] != "go":
            return
        peer = msg["from"]
        hello = self.make_message(mto=peer, mtype="chat", mbody="hello from slixmpp")
        hello["id"] = "slix-1"
        hello.send()
        end = self.make_message(mto=peer, mtype="chat", mbody="end")
        end["id"] = "slix-end"
        end.send()
        emit("sent", to=str(peer))
        self.finish()


def main():
    jid, password, host, port, scenario = sys.argv[1:6]
    client = Client(jid, password, scenario)
    client.connect(address=(host, int(port)))
    client.loop.run_until_complete(client.disconnected)


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # reported to the test, which fails on it
        print(json.dumps({"error": repr(err)}), flush=True)
