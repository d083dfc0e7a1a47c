package wsman

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Every error returned by Client.Post that belongs to one of these classes matches it with
// errors.Is; the message adds the short action name and what was observed.
var (
	// ErrTimeout: AMT (through the agent) did not answer within Options.RequestTimeout. rpc-go stays silent when
	// AMT does not answer, so this is the normal symptom of a busy or unreachable firmware. Retryable.
	ErrTimeout = errors.New("AMT did not answer")

	// ErrTruncated: the reply was cut short or is not a well-formed HTTP reply / SOAP envelope (rpc-go hands
	// over what it read when AMT paused for 100 ms). Retryable.
	ErrTruncated = errors.New("truncated or malformed reply")

	// ErrStaleReply: a 200 reply whose RelatesTo names another request's MessageID. Retryable.
	ErrStaleReply = errors.New("reply belongs to another request")

	// ErrUnauthorized: AMT kept answering 401 to correctly formed digest requests, i.e. it rejected the
	// credentials. Not retryable.
	ErrUnauthorized = errors.New("AMT rejected the credentials")

	// ErrNotSupported: a client.WSMan TCP method was called; the agent relay only carries HTTP requests.
	ErrNotSupported = errors.New("not supported over the agent relay")
)

// Fault is a SOAP fault returned by AMT (normally with HTTP 400 or 500). Code and Subcode hold the local part of
// the fault QNames (for example "Sender" and "AlreadyExists"); the prefix AMT used is dropped because it is
// arbitrary per document.
type Fault struct {
	Status  int    // HTTP status of the reply
	Code    string // e.g. "Sender", "Receiver"
	Subcode string // e.g. "AlreadyExists", "DestinationUnreachable", "InvalidSelectors"
	Reason  string // human-readable text from AMT
	Detail  string // text content of the fault Detail, if any (e.g. a WS-Management FaultDetail URI)
}

func (f *Fault) Error() string {
	what := f.Subcode
	if what == "" {
		what = f.Code
	}
	if what == "" {
		what = "(no code)"
	}
	if f.Reason == "" {
		return "AMT fault " + what
	}
	return "AMT fault " + what + ": " + f.Reason
}

// HTTPError is a non-200, non-401 reply that does not carry a SOAP fault.
type HTTPError struct {
	Status int
	Reason string // reason phrase of the status line, as sent
}

func (e *HTTPError) Error() string {
	s := "AMT answered HTTP " + strconv.Itoa(e.Status)
	if e.Reason != "" {
		s += " " + e.Reason
	}
	return s
}

// retryable reports whether err is a transport failure after which an idempotent request may be sent again.
func retryable(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrStaleReply)
}

// printable makes a value received from the device or the caller safe and short enough for an error message.
func printable(s string, max int) string {
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			c = '?'
		}
		b = append(b, c)
	}
	out := strings.ToValidUTF8(string(b), "?")
	if len(s) > max {
		return out + "…"
	}
	return out
}
