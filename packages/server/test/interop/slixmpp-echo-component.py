#!/usr/bin/python3
"""An XEP-0114 component written with slixmpp's ComponentXMPP, for Natter's interop tests.

Usage: slixmpp-echo-component.py DOMAIN SECRET HOST PORT

It echoes every chat/normal message with a body back to its sender ("echo: <body>"), answers
disco#info on its domain (identity gateway/irc, feature urn:natter:test:echo), accepts presence
subscriptions, and prints "ready" on stdout once the handshake succeeded.
"""
import asyncio
import sys

from slixmpp.componentxmpp import ComponentXMPP


class EchoComponent(ComponentXMPP):
    def __init__(self, domain: str, secret: str, host: str, port: int) -> None:
        super().__init__(domain, secret, host, port)
        self.register_plugin("xep_0030")
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence_subscribe", self.on_subscribe)
        self.add_event_handler("disconnected", self.on_disconnected)

    async def on_start(self, _event) -> None:
        disco = self["xep_0030"]
        disco.add_identity(category="gateway", itype="irc", name="slixmpp echo", jid=self.boundjid)
        disco.add_feature("urn:natter:test:echo", jid=self.boundjid)
        print("ready", flush=True)

    def on_message(self, msg) -> None:
        if msg["type"] in ("chat", "normal") and msg["body"]:
            reply = msg.reply(f"echo: {msg['body']}")
            reply.send()

    def on_subscribe(self, pres) -> None:
        self.send_presence(pto=pres["from"].bare, pfrom=pres["to"].bare, ptype="subscribed")
        self.send_presence(pto=pres["from"].bare, pfrom=pres["to"].bare)

    def on_disconnected(self, _event) -> None:
        print("disconnected", flush=True)


def main() -> None:
    domain, secret, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    component = EchoComponent(domain, secret, host, port)
    component.connect()
    asyncio.get_event_loop().run_forever()


if __name__ == "__main__":
    main()
