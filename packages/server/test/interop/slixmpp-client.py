#!/usr/bin/python3
"""A client written with slixmpp (Debian python3-slixmpp), for Natter's interop tests of ad-hoc
commands (XEP-0050) and avatar conversion (XEP-0398).

Usage: slixmpp-client.py JID PASSWORD HOST PORT SCENARIO [ARG]

Scenarios (each prints JSON lines, then "done"):
  password NEW      lists the server's commands, runs "change my password" with mismatching
                    passwords (error expected), then with NEW twice.
  publish-avatar B64  publishes the image as a XEP-0084 avatar (open access) with slixmpp's plugin.
  read-vcard JID    reads JID's vCard with xep_0054 and prints the PHOTO's type and bytes (base64).
  set-vcard-photo B64 sets the image as the vCard photo with slixmpp's xep_0153 plugin.
  admin USER@HOST:PW  as an admin (XEP-0133): lists the admin commands with xep_0133, counts online
                    users, adds USER@HOST with PW, disables it, lists the disabled users.
"""
import base64
import json
import ssl
import sys

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError

PASSWORD_NODE = "https://natter.dev/commands/change-password"
ADMIN = "http://jabber.org/protocol/admin"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"


def emit(kind, **values):
    print(json.dumps({"kind": kind, **values}), flush=True)


class Client(ClientXMPP):
    def __init__(self, jid, password, scenario, arg):
        # slixmpp 1.8 binds SCRAM-*-PLUS to tls-unique, which TLS 1.3 lacks, and SCRAM without
        # channel binding would then be a downgrade (RFC 5802 §6, "y" flag): PLAIN, over TLS.
        super().__init__(jid, password, sasl_mech="PLAIN")
        self.scenario = scenario
        self.arg = arg
        for plugin in (
            "xep_0030", "xep_0004", "xep_0050", "xep_0054", "xep_0060", "xep_0084", "xep_0133", "xep_0153", "xep_0163"
        ):
            self.register_plugin(plugin)
        # The test server's certificate is self-signed.
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", self.on_failed_auth)

    def on_failed_auth(self, _event):
        emit("failed-auth")
        self.disconnect()

    async def on_start(self, _event):
        self.send_presence()
        try:
            await getattr(self, "scenario_" + self.scenario.replace("-", "_"))()
        except IqError as err:
            emit("iq-error", condition=err.iq["error"]["condition"], text=err.iq["error"]["text"])
        except Exception as err:  # reported to the test, which fails on it
            emit("exception", error=repr(err))
        print("done", flush=True)
        self.disconnect()

    async def scenario_password(self):
        domain = self.boundjid.domain
        items = await self["xep_0050"].get_commands(jid=domain)
        emit("commands", nodes=[item[1] for item in items["disco_items"]["items"]])
        started = await self["xep_0050"].send_command(domain, PASSWORD_NODE, action="execute")
        command = started["command"]
        sessionid = command["sessionid"]
        fields = command["form"].get_fields()
        emit("form", status=command["status"], fields={name: f["type"] for name, f in fields.items()})

        def submit(first, second):
            form = self["xep_0004"].make_form(ftype="submit")
            form.add_field(var="password", value=first)
            form.add_field(var="password-confirm", value=second)
            return form

        try:
            await self["xep_0050"].send_command(
                domain, PASSWORD_NODE, action="complete", sessionid=sessionid, payload=submit(self.arg, self.arg + "x")
            )
            emit("mismatch-accepted")
        except IqError as err:
            emit("mismatch", condition=err.iq["error"]["condition"], text=err.iq["error"]["text"])
        done = await self["xep_0050"].send_command(
            domain, PASSWORD_NODE, action="complete", sessionid=sessionid, payload=submit(self.arg, self.arg)
        )
        emit("completed", status=done["command"]["status"], note=done["command"]["notes"])

    async def admin_form(self, name, fields):
        """Runs the XEP-0133 command `name`: execute, then (when a form is asked for) submit `fields`."""
        domain = self.boundjid.domain
        node = ADMIN + "#" + name
        started = await self["xep_0050"].send_command(domain, node, action="execute")
        command = started["command"]
        if command["status"] == "completed":
            return command
        emit("form", name=name, fields={n: f["type"] for n, f in command["form"].get_fields().items()})
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN)
        for var, (ftype, value) in fields.items():
            form.add_field(var=var, ftype=ftype, value=value)
        done = await self["xep_0050"].send_command(
            domain, node, action="complete", sessionid=command["sessionid"], payload=form
        )
        return done["command"]

    async def scenario_admin(self):
        items = await self["xep_0133"].get_commands()
        emit("commands", nodes=[item[1] for item in items["disco_items"]["items"]])
        online = await self.admin_form("get-online-users-num", {})
        emit("online", values=online["form"].get_values())
        user, password = self.arg.split(":", 1)
        added = await self.admin_form(
            "add-user",
            {
                "accountjid": ("jid-single", user),
                "password": ("text-private", password),
                "password-verify": ("text-private", password),
            },
        )
        emit("added", status=added["status"], notes=added["notes"])
        disabled = await self.admin_form("disable-user", {"accountjids": ("jid-multi", [user])})
        emit("disabled", status=disabled["status"])
        listed = await self.admin_form("get-disabled-users-list", {"max_items": ("list-single", "none")})
        emit("disabled-list", values=listed["form"].get_values())

    def open_access(self):
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value=PUBLISH_OPTIONS)
        form.add_field(var="pubsub#access_model", value="open")
        return form

    async def scenario_publish_avatar(self):
        data = base64.b64decode(self.arg)
        avatar = self["xep_0084"]
        await avatar.publish_avatar(data, options=self.open_access())
        info = {"id": avatar.generate_id(data), "type": "image/png", "bytes": len(data)}
        await avatar.publish_avatar_metadata(items=[info], options=self.open_access())
        emit("published", id=info["id"])

    async def scenario_read_vcard(self):
        result = await self["xep_0054"].get_vcard(self.arg, cached=False)
        photo = result["vcard_temp"]["PHOTO"]
        emit("vcard", type=photo["TYPE"], binval=base64.b64encode(photo["BINVAL"] or b"").decode())

    async def scenario_set_vcard_photo(self):
        await self["xep_0153"].set_avatar(avatar=base64.b64decode(self.arg), mtype="image/png")
        emit("vcard-set")


if __name__ == "__main__":
    import logging
    import os

    if os.environ.get("SLIXMPP_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)-8s %(message)s")
    jid, password, host, port, scenario = sys.argv[1:6]
    arg = sys.argv[6] if len(sys.argv) > 6 else ""
    client = Client(jid, password, scenario, arg)
    client.connect((host, int(port)))
    client.loop.run_until_complete(client.disconnected)
