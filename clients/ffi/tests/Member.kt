// The member of the bindings test, in Kotlin on the JVM through the
// generated bindings: registers, asks to join with a note, joins from the
// Welcome, writes, hears the facilitator's answer live through a listener,
// and checks that a refusal carries the server's stable code.
//
// Run by tests/e2e/bindings.rs: MemberKt SERVER DATA_DIR MAILBOX.

import java.io.File
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking
import uniffi.hearth_ffi.EventListener
import uniffi.hearth_ffi.HearthClient
import uniffi.hearth_ffi.HearthException
import uniffi.hearth_ffi.LiveEvent

class Collector : EventListener {
    val events = LinkedBlockingQueue<LiveEvent>()

    override fun onEvent(event: LiveEvent) {
        events.put(event)
    }
}

fun post(mailbox: File, name: String, text: String = "") {
    val tmp = File(mailbox, "$name.tmp")
    tmp.writeText(text)
    check(tmp.renameTo(File(mailbox, name)))
}

fun waitFor(mailbox: File, name: String, seconds: Int = 90): String {
    val file = File(mailbox, name)
    val deadline = System.currentTimeMillis() + seconds * 1000L
    while (System.currentTimeMillis() < deadline) {
        if (file.exists()) return file.readText()
        Thread.sleep(100)
    }
    error("member: nothing at $name after ${seconds}s")
}

fun main(args: Array<String>) = runBlocking {
    val (server, dataDir, mailboxPath) = args
    val mailbox = File(mailboxPath)
    // An app keeps this key in the Android Keystore.
    val key = ByteArray(32).also { java.security.SecureRandom().nextBytes(it) }
    val sam = HearthClient.open(server, dataDir, key)
    sam.register(null)
    sam.setDisplayName("Sam")
    sam.redeemInvite(waitFor(mailbox, "invite"), "Sam said this group helps")
    val circle = waitFor(mailbox, "approved")
    check(sam.acceptWelcomes() == listOf(circle)) { "joined from the Welcome" }

    val collector = Collector()
    val listening = sam.listen(collector)
    val connected = collector.events.poll(30, TimeUnit.SECONDS)
    check(connected is LiveEvent.Connected) { "first event: $connected" }

    sam.sendText(circle, "hello from Kotlin")
    post(mailbox, "member_sent")
    val deadline = System.currentTimeMillis() + 60_000
    var heard: LiveEvent.Message? = null
    while (heard == null && System.currentTimeMillis() < deadline) {
        val event = collector.events.poll(1, TimeUnit.SECONDS) ?: continue
        if (event is LiveEvent.Message && event.message.text == "welcome, Sam") heard = event
    }
    checkNotNull(heard) { "the facilitator's answer never arrived live" }
    check(heard.circleId == circle)
    check(heard.message.senderName == "Alice") { "sender: ${heard.message.senderName}" }
    listening.stop()
    listening.close()

    val history = sam.history(circle)
    check(history.map { it.text } .containsAll(listOf("hello from Kotlin", "welcome, Sam")))
    val authenticator = waitFor(mailbox, "facilitator_sent")
    check(sam.epochAuthenticator(circle) == authenticator) { "one group, no one in the middle" }

    // Alice scheduled the circle: Sam sees it in his own zone, says he is
    // coming, and decrypts the frame Alice encrypted for the call.
    val (seriesId, frameHex, promptId) = waitFor(mailbox, "scheduled").split("\n")
    sam.sync(circle)
    val sessions = sam.sessions(circle, "America/New_York")
    check(sessions.size == 6) { "sessions: ${sessions.size}" }
    check(sessions[0].localStart.startsWith("2026-12-01T13:00")) { sessions[0].localStart }
    check(sessions[0].durationMinutes.toInt() == 90)
    check(sessions[0].title == "Tuesday circle")
    sam.rsvp(circle, seriesId, sessions[0].occurrence, true, null)
    val call = sam.joinCall(circle)
    val frame = frameHex.chunked(2).map { it.toInt(16).toByte() }.toByteArray()
    check(String(call.decrypt(frame)) == "alice's first frame") { "the call's keys differ" }
    sam.replyCheckIn(circle, promptId, 4.toUByte(), "tired but here")
    post(mailbox, "rsvped")

    // A push wakes Sam's phone: first before the phone was unlocked (the
    // key store gives no key: the placeholder), then with the key. The
    // worker opens the directory beside the app's own client, as a second
    // process would, and shows Alice's reminder once.
    waitFor(mailbox, "reminded")
    check(hearthWake(server, dataDir, null) == listOf(PLACEHOLDER)) { "locked: the placeholder" }
    val posted = hearthWake(server, dataDir, key)
    check(posted.map { it.body } == listOf("Alice: see you Thursday")) { "posted: $posted" }
    check(posted[0].thread == circle) { "grouped under the circle" }
    check(hearthWake(server, dataDir, key).isEmpty()) { "shown once" }
    check(sam.history(circle).last().text == "see you Thursday") { "the app reads what the worker decrypted" }

    // Members may not invite: a refusal an app can branch on.
    try {
        sam.createInvite(circle)
        error("a member minted an invite")
    } catch (refused: HearthException.Server) {
        check(refused.code == "not_facilitator") { "code: ${refused.code}" }
    } catch (refused: HearthException.NotFacilitator) {
        // The SDK knew before asking.
    }
    post(mailbox, "done")
    println("member (Kotlin): ok")
}
