#!/usr/bin/python3
"""A room moderator written with slixmpp (Debian python3-slixmpp 1.8), for Natter's interop tests.

Usage: slixmpp-muc-moderator.py JID PASSWORD HOST PORT ROOM NICK BODY

Logs in (STARTTLS; the test server's certificate is self-signed), joins ROOM as NICK with the
room's history (XEP-0045), finds the history message whose body is BODY and asks the room to
retract it with slixmpp's XEP-0425 plugin (Message Fastening form), says something itself and takes
it back with its XEP-0424 plugin, then reads the room's archive with slixmpp's XEP-0313 plugin.
Prints one JSON object per line: {"history": [...]}, {"moderated": ...}, {"own": ...},
{"retracted": ...}, {"archive": [...]}, then "done".
"""
import asyncio
import json
import ssl
import sys

from slixmpp import ClientXMPP, JID


def describe(msg) -> dict:
    sid = msg.xml.findall("{urn:xmpp:sid:0}stanza-id")
    retract = msg.xml.find("{urn:xmpp:message-retract:1}retract")
    return {
        "from": str(msg["from"]),
        "body": msg["body"],
        "stanza_id": sid[0].get("id") if sid else None,
        "stanza_id_by": sid[0].get("by") if sid else None,
        "occupant_id": msg["occupant-id"]["id"],
        "retracted": msg.xml.find("{urn:xmpp:message-retract:1}retracted") is not None
        or msg.xml.find("{urn:xmpp:message-retract:0}retracted") is not None,
        "retracts": retract.get("id") if retract is not None else None,
    }


class Moderator(ClientXMPP):
    def __init__(self, jid, password, room, nick, body):
        # slixmpp 1.8 picks SCRAM-SHA-256-PLUS and binds to tls-unique, which TLS 1.3 does not have
        # (RFC 9266: servers offer tls-exporter and tls-server-end-point); told to use SCRAM
        # without binding it still sends the "y" flag, which a server offering -PLUS must refuse
        # (RFC 5802 §6, downgrade protection). PLAIN inside TLS, then.
        super().__init__(jid, password, sasl_mech="PLAIN")
        self.room = JID(room)
        self.nick = nick
        self.body = body
        for p in ("xep_0030", "xep_0045", "xep_0059", "xep_0313", "xep_0359", "xep_0421", "xep_0424", "xep_0425"):
            self.register_plugin(p)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_auth", lambda _e: self.fail("authentication failed"))

    def fail(self, why: str) -> None:
        print(json.dumps({"error": why}), flush=True)
        self.disconnect()

    def out(self, obj) -> None:
        print(json.dumps(obj), flush=True)

    async def start(self, _event) -> None:
        try:
            await self.run()
        except Exception as err:  # noqa: BLE001 - reported to the test
            self.fail(repr(err))
            return
        print("done", flush=True)
        self.disconnect()

    async def run(self) -> None:
        self.send_presence()
        _self, _subject, _occupants, history = await self["xep_0045"].join_muc_wait(
            self.room, self.nick, maxstanzas=20, timeout=10
        )
        seen = [describe(m) for m in history]
        self.out({"history": seen})
        target = next(m for m in seen if m["body"] == self.body)
        await self["xep_0425"].moderate(self.room, target["stanza_id"], "spam (slixmpp)", timeout=10)
        self.out({"moderated": target["stanza_id"]})

        own = asyncio.get_running_loop().create_future()

        def on_groupchat(msg):
            if msg["mucnick"] == self.nick and msg["body"] == "hello from slixmpp" and not own.done():
                own.set_result(describe(msg))

        self.add_event_handler("groupchat_message", on_groupchat)
        self.send_message(mto=self.room, mbody="hello from slixmpp", mtype="groupchat")
        mine = await asyncio.wait_for(own, 10)
        self.out({"own": mine})

        # Takes its own message back with its XEP-0424 plugin (the Fastening form, naming the
        # room's stanza-id), and waits for the room to relay the retraction.
        relayed = asyncio.get_running_loop().create_future()

        def on_retraction(msg):
            apply_to = msg.xml.find("{urn:xmpp:fasten:0}apply-to")
            if apply_to is not None and apply_to.get("id") == mine["stanza_id"] and not relayed.done():
                relayed.set_result(True)

        self.add_event_handler("groupchat_message", on_retraction)
        self["xep_0424"].send_retraction(self.room, mine["stanza_id"], mtype="groupchat")
        await asyncio.wait_for(relayed, 10)
        self.out({"retracted": mine["stanza_id"]})

        iq = await self["xep_0313"].retrieve(jid=self.room, rsm={"max": 50}, timeout=10)
        archive = []
        for r in iq["mam"]["results"]:
            fwd = r["mam_result"]["forwarded"]
            m = fwd["stanza"]
            d = describe(m)
            d["id"] = r["mam_result"]["id"]
            d["from_archive"] = str(r["from"])
            archive.append(d)
        self.out({"archive": archive})


def main() -> None:
    jid, password, host, port, room, nick, body = sys.argv[1:8]
    xmpp = Moderator(jid, password, room, nick, body)
    xmpp.connect((host, int(port)))
    asyncio.get_event_loop().run_until_complete(xmpp.disconnected)


if __name__ == "__main__":
    main()
