#!/usr/bin/python3
"""A client written with slixmpp 1.8 (Debian python3-slixmpp), for the interop tests of the
SDK's messaging modules (packages/client/test/interop-slixmpp.test.ts): chat states (xep_0085),
chat markers (xep_0333), corrections (xep_0308), retractions (xep_0424), reactions (xep_0444).

Usage: slixmpp-messaging.py JID PASSWORD HOST PORT SCENARIO

Scenarios (each prints {"kind": "ready"} once online, JSON lines, then "done"):
  receive  prints what slixmpp's plugins parse from every message it gets; ends at a message
           whose body is "end".
  send     waits for a message with body "go", then answers its sender with each extension,
           built with slixmpp's plugin API and referring to that message's id; ends with a
           message whose body is "end".
"""
import json
import ssl
import sys

from slixmpp import ClientXMPP

PLUGINS = ("xep_0030", "xep_0085", "xep_0333", "xep_0308", "xep_0424", "xep_0444")


def emit(kind, **values):
    print(json.dumps({"kind": kind, **values}, ensure_ascii=False), flush=True)


def children(msg):
    """The message's child elements as "{namespace}name" (ElementTree's notation)."""
    return [child.tag for child in msg.xml]


class Client(ClientXMPP):
    def __init__(self, jid, password, scenario):
        # slixmpp 1.8 binds SCRAM-*-PLUS to tls-unique, which TLS 1.3 lacks: PLAIN, over TLS.
        super().__init__(jid, password, sasl_mech="PLAIN")
        self.scenario = scenario
        for plugin in PLUGINS:
            self.register_plugin(plugin)
        # The test server's certificate is self-signed.
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        if scenario == "receive":
            self.add_event_handler("chatstate", self.on_chatstate)
            self.add_event_handler("marker", self.on_marker)
            self.add_event_handler("message_correction", self.on_correction)
            self.add_event_handler("message_retract", self.on_retract)
            self.add_event_handler("reactions", self.on_reactions)
            self.add_event_handler("message", self.on_message)
        else:
            self.add_event_handler("message", self.on_go)

    def on_failed_auth(self, _event):
        print(json.dumps({"error": "failed-auth"}), flush=True)
        self.disconnect()

    async def on_start(self, _event):
        self.send_presence()
        await self.get_roster()
        emit("ready", jid=str(self.boundjid))

    def finish(self):
        print("done", flush=True)
        self.disconnect()

    # receive: what slixmpp's plugins make of the SDK's messages

    def on_chatstate(self, msg):
        emit("chatstate", state=msg["chat_state"], sender=str(msg["from"]), type=msg["type"])

    def on_marker(self, msg):
        for marker in ("received", "displayed", "acknowledged"):
            if msg.xml.find("{urn:xmpp:chat-markers:0}%s" % marker) is not None:
                emit("marker", marker=marker, id=msg[marker]["id"], sender=str(msg["from"]))

    def on_correction(self, msg):
        emit("correction", replaces=msg["replace"]["id"], id=msg["id"], body=msg["body"])

    def on_retract(self, msg):
        emit("retract", id=msg["apply_to"]["id"])

    def on_reactions(self, msg):
        emit("reactions", id=msg["reactions"]["id"], values=sorted(msg["reactions"]["values"]))

    def on_message(self, msg):
        markable = msg.xml.find("{urn:xmpp:chat-markers:0}markable") is not None
        emit("message", id=msg["id"], type=msg["type"], body=msg["body"], markable=markable, children=children(msg))
        if msg["body"] == "end":
            self.finish()

    # send: slixmpp's plugin API towards the SDK

    def on_go(self, msg):
        if msg["body"] != "go":
            return
        peer = msg["from"]
        target = msg["id"]
        for state in ("composing", "paused"):
            m = self.make_message(mto=peer, mtype="chat")
            m["chat_state"] = state
            m.send()
        original = self.make_message(mto=peer, mtype="chat", mbody="helo from slixmpp")
        original["id"] = "slix-original"
        original.enable("markable")
        original.send()
        for marker in ("received", "displayed", "acknowledged"):
            self["xep_0333"].send_marker(peer, target, marker)
        correction = self.make_message(mto=peer, mtype="chat", mbody="hello from slixmpp")
        correction["id"] = "slix-correction"
        correction["replace"]["id"] = "slix-original"
        correction.send()
        self["xep_0444"].send_reactions(peer, target, ["👍", "🎉"])
        self["xep_0444"].send_reactions(peer, target, [])
        self["xep_0424"].send_retraction(peer, "slix-original")
        self.make_message(mto=peer, mtype="chat", mbody="end").send()
        emit("sent", to=str(peer), target=target)
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
