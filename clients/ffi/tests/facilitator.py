"""The facilitator of the bindings test, in Python through the generated
module: registers, names herself, creates a circle, invites, approves the
member who asked with a note, reads the member's message, answers, and
checks that a refusal carries the server's stable code.

Run by tests/e2e/bindings.rs: facilitator.py SERVER DATA_DIR MAILBOX, with
FFI_BINDINGS_DIR naming the generated bindings. The two sides meet through
files in MAILBOX.
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["FFI_BINDINGS_DIR"], "python"))
import hearth_ffi as hearth  # noqa: E402


def post(mailbox, name, text=""):
    path = os.path.join(mailbox, name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


async def wait_for(mailbox, name, seconds=90):
    path = os.path.join(mailbox, name)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
        await asyncio.sleep(0.1)
    raise TimeoutError(f"facilitator: nothing at {name} after {seconds}s")


async def main():
    server, data_dir, mailbox = sys.argv[1:4]
    key = os.urandom(32)  # an app keeps this in the platform's key store
    alice = await hearth.HearthClient.open(server, data_dir, key)
    device = await alice.register(None)
    assert device == await alice.device_id()
    await alice.set_display_name("Alice")
    circle = await alice.create_circle("Tuesday evening group")
    circles = await alice.circles()
    assert [c.title for c in circles] == ["Tuesday evening group"], circles
    post(mailbox, "invite", await alice.create_invite(circle))

    requests = []
    deadline = time.monotonic() + 90
    while not requests and time.monotonic() < deadline:
        requests = await alice.join_requests(circle)
        await asyncio.sleep(0.2)
    assert len(requests) == 1, requests
    assert requests[0].note == "Sam said this group helps", requests[0].note
    await alice.approve(circle, requests[0].id)
    post(mailbox, "approved", circle)

    await wait_for(mailbox, "member_sent")
    news = await alice.sync(circle)
    heard = [m for m in news if m.kind == "text"]
    assert [(m.sender_name, m.text) for m in heard] == [("Sam", "hello from Kotlin")], news
    names = sorted(m.name or "" for m in await alice.members(circle))
    assert names == ["Alice", "Sam"], names
    await alice.send_text(circle, "welcome, Sam")
    # Sent means delivered: nothing is left waiting in the outbox.
    assert await alice.outbox() == [], await alice.outbox()
    post(mailbox, "facilitator_sent", await alice.epoch_authenticator(circle))

    # A refusal keeps the server's stable code: Alice is in the circle
    # already, so redeeming an invite to it is refused.
    again = await alice.create_invite(circle)
    try:
        await alice.redeem_invite(again, "me again")
        raise AssertionError("redeeming into one's own circle was accepted")
    except hearth.HearthError.Server as refused:
        assert refused.code == "already_member", refused.code
        assert refused.status == 409, refused.status
    try:
        await alice.sync("not a circle id!")
        raise AssertionError("a bad circle id was accepted")
    except hearth.HearthError.InvalidInput:
        pass

    # A biweekly 90-minute session for twelve weeks, in the video room;
    # Alice opens the call's media keys and encrypts a frame for Sam.
    plan = hearth.SeriesPlan(
        first_date="2026-12-01", start_time="19:00", time_zone="Europe/Berlin",
        duration_minutes=90, every_weeks=2, count=6, until=None,
        title="Tuesday circle", agenda="Arrivals; one round; closing", video_room=True)
    series = await alice.schedule_series(circle, plan)
    call = await alice.join_call(circle)
    frame = call.encrypt(b"alice's first frame")
    prompt = await alice.prompt_check_in(circle, "How are you arriving today?")
    post(mailbox, "scheduled", "\n".join([series, frame.hex(), prompt]))
    await wait_for(mailbox, "rsvped")
    await alice.sync(circle)
    sessions = await alice.sessions(circle, "Europe/Berlin")
    assert len(sessions) == 6, sessions
    assert sessions[0].local_start.startswith("2026-12-01T19:00"), sessions[0].local_start
    assert [p.name for p in sessions[0].coming] == ["Sam"], sessions[0].coming
    [check_in] = await alice.check_ins(circle)
    assert [(r.member.name, r.mood, r.line) for r in check_in.replies] == [
        ("Sam", 4, "tired but here")], check_in.replies
    # A reminder Sam's phone shows from a push (the Kotlin side wakes).
    await alice.send_text(circle, "see you Thursday")
    post(mailbox, "reminded")

    await wait_for(mailbox, "done")
    # Another key does not open Alice's files.
    try:
        await hearth.HearthClient.open(server, data_dir, os.urandom(32))
        raise AssertionError("another key opened the data directory")
    except hearth.HearthError.WrongKey:
        pass
    print("facilitator (Python): ok")


asyncio.run(main())
