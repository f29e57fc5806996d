// What an Android push worker does with a wake, against the generated
// bindings: the Hearth half of a FirebaseMessagingService + WorkManager
// pair (clients/ffi/README.md shows the Android half). Compiled and run by
// the bindings scenario (tests/e2e/bindings.rs), so it cannot drift from the
// bindings.

import uniffi.hearth_ffi.Wake
import uniffi.hearth_ffi.notificationsOnWake

/** One notification as the platform posts it: a title, a line, and the
 *  thread (the circle) it groups under. */
data class Posted(val title: String, val body: String, val thread: String)

/** What the push's placeholder says when nothing better can be shown. */
val PLACEHOLDER = Posted("Hearth", "New activity in your circle", "hearth")

/**
 * Catches up every circle in one request and returns what to post: each
 * message, check-in or schedule change the app has not shown yet, once.
 * [key] is null when the key store is locked (before the first unlock): the
 * placeholder then, and the data directory is not touched.
 */
suspend fun hearthWake(server: String, dataDir: String, key: ByteArray?): List<Posted> {
    return when (val wake = notificationsOnWake(server, dataDir, key, 20_000uL)) {
        is Wake.Show -> wake.items.map { item ->
            val who = item.senderName ?: "Someone"
            val body = when (item.kind) {
                "message", "reply" -> "$who: ${item.preview}"
                "reaction" -> "$who reacted ${item.preview}"
                "check_in" -> "$who asks: ${item.preview}"
                "schedule" -> "$who changed the schedule"
                "agreement" -> "The circle's agreement changed"
                "joined" -> "You joined the circle"
                else -> "New activity"
            }
            Posted(item.circleTitle ?: "Your circle", body, item.circleId)
        }
        is Wake.Locked, is Wake.Busy -> listOf(PLACEHOLDER)
    }
}
