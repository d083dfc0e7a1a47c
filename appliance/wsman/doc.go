// Package wsman is the WS-Management transport of one agent session: it turns the SOAP envelopes built by
// go-wsman-messages into the raw HTTP/1.1 requests that rpc-go relays to the AMT firmware (see
// reference/rps-protocol.md §2.6–§2.9), signs them with HTTP digest authentication, and turns the raw replies
// that come back into SOAP envelopes, typed faults and retryable transport errors.
//
// Client implements go-wsman-messages' client.WSMan, so flows build their calls with amt.NewMessages,
// ips.NewMessages and cim.NewMessages and the bytes travel through a Relay (the agent's WebSocket) instead of a
// TCP connection.
//
// What it must never do:
//   - put a password, a digest HA1 or a message body into an error, a log line or an Observe record (AMT request
//     bodies carry MEBx passwords, Wi-Fi keys and password hashes);
//   - send a non-idempotent call (Put, Create, Delete, any method such as AdminSetup or Setup) twice on its own:
//     after a timeout the flow must look at the device and decide, not the transport;
//   - have more than one request in flight on a Relay.
//
// It does not log; it returns errors wrapped with the failing operation and reports every relayed exchange to an
// optional Observe hook.
package wsman
