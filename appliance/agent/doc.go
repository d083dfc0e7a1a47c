// Package agent speaks the RPS WebSocket protocol with Intel's rpc-go agent: the JSON envelope, the method
// command line of the first message, the base64 device payload and its validation, one Session per connection,
// and the relay of raw WS-Management HTTP requests through the agent (a Session is a wsman.Relay).
//
// The wire contract is shared/reference/rps-protocol.md §2–3. Where Intel's RPS is wrong we do the right thing
// and say so next to the code: chunk sizes in bytes (wsman package), and, above all, every session ends with a
// terminal `error` or `success` message — RPS leaves agents hanging on unexpected errors.
//
// It must never put a password into a log line or an agent-facing text, and one session's failure must never
// disturb another session.
package agent
