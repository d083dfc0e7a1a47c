package wsman

import "context"

// Relay carries one raw HTTP request to a device and brings back its raw HTTP reply. The agent session
// implements it by sending a `wsman` message and waiting for the agent's `response`.
//
// Exchange must honour ctx: when it is done, Exchange returns ctx.Err() (wrapped) promptly. Exactly one
// Exchange is in flight per Relay at a time.
type Relay interface {
	Exchange(ctx context.Context, request []byte) (reply []byte, err error)
}
