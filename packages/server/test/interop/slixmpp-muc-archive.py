#!/usr/bin/python3
"""A room's archive read by slixmpp (Debian python3-slixmpp 1.8), for Natter's interop tests:
the same script runs against Natter and against Prosody (mod_muc_mam).

Usage: slixmpp-muc-archive.py JID PASSWORD HOST PORT ROOM NICK

Logs in (STARTTLS, self-signed certificate accepted; PLAIN inside TLS, see slixmpp-muc-moderator.py),
enters ROOM as NICK (accepting the default configuration when it creates the room), says "one",
"two" and "three", noting the stanza-id (XEP-0359) the room gives each, then reads the room's
archive with slixmpp's XEP-0313 plugin. Prints {"sent": [...]} and {"archive": [...]}, then "done".
"""
import asyncio
import json
import ssl
import sys

from slixmpp import ClientXMPP, JID


class Archiver(ClientXMPP):
    def __init__(self, jid, password, room, nick):
        super().__init__(jid, password, sasl_mech="PLAIN")
        self.room = JID(room)
        self.nick = nick
        for p in ("xep_0004", "xep_0030", "xep_0045", "xep_0059", "xep_0313", "xep_0359"):
            self.register_plugin(p)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_auth", lambda _e: self.fail("authentication failed"))

    def fail(self, why: str) -> None:
        print(json.dumps({"error": why}), flush=True)
        self.disconnect()

    async def start(self, _event) -> None:
        try:
            await self.run()
        except Exception as err:  # noqa: BLE001 - reported to the test
            self.fail(repr(err))
            return
        print("done", flush=True)
        self.disconnect()

    def stanza_id(self, msg):
        for s in msg.xml.findall("{urn:xmpp:sid:0}stanza-id"):
            if s.get("by") == self.room.bare:
                return s.get("id")
        return None

    async def run(self) -> None:
        self.send_presence()
        own, _subject, _occupants, _history = await self["xep_0045"].join_muc_wait(
            self.room, self.nick, maxstanzas=0, timeout=10
        )
        if 201 in own["muc"]["status_codes"]:
            # A new room waits for its configuration: the defaults (XEP-0045 §10.1.2, instant room).
            await self["xep_0045"].set_room_config(self.room, self["xep_0004"].make_form(ftype="submit"), timeout=10)
        sent = []
        for body in ("one", "two", "three"):
            echo = asyncio.get_running_loop().create_future()

            def on_groupchat(msg, body=body, echo=echo):
                if msg["mucnick"] == self.nick and msg["body"] == body and not echo.done():
                    echo.set_result(self.stanza_id(msg))

            self.add_event_handler("groupchat_message", on_groupchat)
            self.send_message(mto=self.room, mbody=body, mtype="groupchat")
            sent.append(await asyncio.wait_for(echo, 10))
            self.del_event_handler("groupchat_message", on_groupchat)
        print(json.dumps({"sent": sent}), flush=True)
        iq = await self["xep_0313"].retrieve(jid=self.room, rsm={"max": 50}, timeout=10)
        archive = [
            {
                "id": r["mam_result"]["id"],
                "from": str(r["from"]),
                "author": str(r["mam_result"]["forwarded"]["stanza"]["from"]),
                "body": r["mam_result"]["forwarded"]["stanza"]["body"],
            }
            for r in iq["mam"]["results"]
        ]
        print(json.dumps({"archive": archive}), flush=True)


def main() -> None:
    jid, password, host, port, room, nick = sys.argv[1:7]
    xmpp = Archiver(jid, password, room, nick)
    xmpp.connect((host, int(port)))
    asyncio.get_event_loop().run_until_complete(xmpp.disconnected)


if __name__ == "__main__":
    main()
