package wsman

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Defaults (reference §4.10).
const (
	DefaultPort           = 16992            // 16993 when the device enforces TLS on its local ports
	DefaultRequestTimeout = 12 * time.Second // RPS delay_timer
	DefaultAttempts       = 3                // RPS wsman_max_attempts

	// maxChallenges is the number of consecutive 401 replies to one request after which the credentials are
	// considered rejected: the first 401 (normal for the first request of a session or after a credential
	// change) plus two re-challenges.
	maxChallenges = 3
)

// Credentials are the digest credentials of one session: the ME Local System Account before activation,
// "admin" and the AMT password afterwards.
type Credentials struct {
	Username string
	Password string
}

// Options tune a Client. Zero values take the defaults.
type Options struct {
	Port           int           // device port in the Host header; DefaultPort when 0
	RequestTimeout time.Duration // per relayed request; DefaultRequestTimeout when 0
	Attempts       int           // attempts for retryable failures of idempotent calls; DefaultAttempts when 0

	// Observe, when set, is called after every relayed exchange (401s and retries included), one call at a
	// time on the goroutine running Post. It must not call back into the Client.
	Observe func(Exchange)
}

// Exchange describes one relayed HTTP exchange, for step records and metrics. It never holds bodies (they may
// carry secrets).
type Exchange struct {
	Action   string        // ShortActionFor of the request, e.g. "AMT_GeneralSettings.Get"
	Status   int           // HTTP status of the reply; 0 when there was no usable reply
	Duration time.Duration // time spent in Relay.Exchange
	Err      error         // nil for a 200 and for a 401 that is answered with a new challenge
}

// Client is the WS-Management client of one agent session. It implements go-wsman-messages' client.WSMan
// (only Post does anything), so flows can use amt.NewMessages(c), ips.NewMessages(c) and cim.NewMessages(c).
//
// The package itself does not import go-wsman-messages (only its interface shape matters); the tests assert that
// *Client satisfies client.WSMan and drive it through amt/ips/cim messages.
//
// A Client and the copies made by WithContext share one session: digest challenge, nonce count, credentials
// and the single request slot of the Relay. They are safe for concurrent use; requests are sent one at a time.
type Client struct {
	s   *session
	ctx context.Context
}

// session is the state shared by a Client and its WithContext copies.
type session struct {
	relay      Relay
	hostHeader string
	hostErr    error
	timeout    time.Duration
	attempts   int
	observe    func(Exchange)

	slot chan struct{} // holds a token while a request (with its retries) is in flight

	mu            sync.Mutex
	creds         Credentials
	ch            *challenge // last challenge from AMT; nil until the first 401
	nc            uint32     // requests signed under ch.nonce
	authenticated bool       // the last reply answered a signed request with something other than 401
}

// NewClient returns the client of the session whose agent is reached through relay. uuid is the device UUID
// used in the Host header. The client starts with context.Background(); bind it to the session with
// WithContext.
func NewClient(relay Relay, uuid string, creds Credentials, opts Options) *Client {
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	s := &session{
		relay:      relay,
		hostHeader: uuid + ":" + strconv.Itoa(opts.Port),
		timeout:    opts.RequestTimeout,
		attempts:   opts.Attempts,
		observe:    opts.Observe,
		slot:       make(chan struct{}, 1),
		creds:      creds,
	}
	if uuid == "" || !headerToken(uuid) || opts.Port < 1 || opts.Port > 65535 {
		s.hostErr = fmt.Errorf("invalid device address %q for the Host header", printable(s.hostHeader, 64))
	}
	return &Client{s: s, ctx: context.Background()}
}

// headerToken reports whether s is printable ASCII without spaces (a UUID, in practice).
func headerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// WithContext returns a Client that shares c's session and whose requests are bounded by ctx: when ctx is done,
// a waiting or running Post returns ctx's error promptly. Post has no context parameter (client.WSMan fixes its
// signature), so a flow binds its session context once: msgs := amt.NewMessages(c.WithContext(ctx)).
func (c *Client) WithContext(ctx context.Context) *Client {
	if ctx == nil {
		panic("wsman: nil context")
	}
	return &Client{s: c.s, ctx: ctx}
}

// SetCredentials switches the credentials used for the following requests, e.g. from the LSA account to
// "admin" and the new password after Setup/AdminSetup. The cached challenge is kept: AMT answers a 401 with a
// fresh one if it wants to.
func (c *Client) SetCredentials(creds Credentials) {
	c.s.mu.Lock()
	c.s.creds = creds
	c.s.mu.Unlock()
}

// IsAuthenticated reports whether the last reply received answered a digest-signed request with something
// other than 401, i.e. whether AMT accepted the current credentials.
func (c *Client) IsAuthenticated() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.authenticated
}

// Connect is part of client.WSMan for direct TCP connections; not supported over the agent relay.
func (c *Client) Connect() error { return fmt.Errorf("wsman connect: %w", ErrNotSupported) }

// Send is part of client.WSMan for direct TCP connections; not supported over the agent relay.
func (c *Client) Send([]byte) error { return fmt.Errorf("wsman send: %w", ErrNotSupported) }

// Receive is part of client.WSMan for direct TCP connections; not supported over the agent relay.
func (c *Client) Receive() ([]byte, error) {
	return nil, fmt.Errorf("wsman receive: %w", ErrNotSupported)
}

// CloseConnection is part of client.WSMan for direct TCP connections; not supported over the agent relay.
func (c *Client) CloseConnection() error {
	return fmt.Errorf("wsman close connection: %w", ErrNotSupported)
}

// GetServerCertificate is part of client.WSMan for direct TLS connections; not supported over the agent relay.
func (c *Client) GetServerCertificate() (*tls.Certificate, error) {
	return nil, fmt.Errorf("wsman get server certificate: %w", ErrNotSupported)
}

// Post sends one SOAP envelope to AMT through the relay and returns the SOAP envelope of its 200 reply.
//
// It signs the request with the cached digest challenge (the first request of a session goes unsigned), answers
// a 401 by taking the new challenge and sending the same request again (the 3rd 401 in a row fails with
// ErrUnauthorized), and runs every exchange under min(session context, RequestTimeout). Get, Enumerate and Pull
// are sent again, up to Attempts in all, after ErrTimeout, ErrTruncated or ErrStaleReply; every other action is
// sent once and its failure returned for the flow to decide. Non-200 replies become *Fault (SOAP fault) or
// *HTTPError. Errors name the short action; they never hold the password or a message body.
func (c *Client) Post(msg string) ([]byte, error) {
	req := newRequest(msg)
	if msg == "" {
		return nil, errors.New("wsman post: empty message")
	}
	if c.s.hostErr != nil {
		return nil, fmt.Errorf("%s: %w", req.name, c.s.hostErr)
	}
	c.s.mu.Lock()
	user := c.s.creds.Username
	c.s.mu.Unlock()
	if !headerSafe(user) {
		return nil, fmt.Errorf("%s: %w", req.name, errBadUsername)
	}
	select {
	case c.s.slot <- struct{}{}:
	case <-c.ctx.Done():
		return nil, fmt.Errorf("%s: %w", req.name, c.ctx.Err())
	}
	defer func() { <-c.s.slot }()
	return c.s.post(c.ctx, req)
}

// post runs one request to completion: digest challenges and retries. The caller holds the slot.
func (s *session) post(ctx context.Context, req request) ([]byte, error) {
	attempts := 1
	if req.idempotent {
		attempts = s.attempts
	}
	attempt, challenges := 1, 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", req.name, err)
		}
		body, status, d, err := s.roundTrip(ctx, req)
		if status == 401 && err == nil {
			challenges++
			if challenges >= maxChallenges {
				s.mu.Lock()
				user := s.creds.Username
				s.mu.Unlock()
				err = fmt.Errorf("%s: %w for user %q (%d digest challenges in a row)",
					req.name, ErrUnauthorized, printable(user, 64), challenges)
			}
		} else if status != 401 {
			challenges = 0
		}
		s.report(Exchange{Action: req.name, Status: status, Duration: d, Err: err})
		switch {
		case err == nil && status == 401:
			continue // signed again with the new challenge; not an attempt
		case err == nil:
			return body, nil
		case req.idempotent && attempt < attempts && retryable(err) && ctx.Err() == nil:
			attempt++
			continue
		case attempt > 1:
			return nil, fmt.Errorf("%w (%d attempts)", err, attempt)
		default:
			return nil, err
		}
	}
}

func (s *session) report(e Exchange) {
	if s.observe != nil {
		s.observe(e)
	}
}

var errBadUsername = errors.New("username holds characters that cannot be sent in a digest header")

// roundTrip sends req once and interprets the reply. A 401 with a usable challenge returns status 401 and a nil
// error after storing the challenge.
func (s *session) roundTrip(ctx context.Context, req request) (body []byte, status int, d time.Duration, err error) {
	s.mu.Lock()
	creds, signed := s.creds, s.ch != nil
	var (
		ch challenge
		nc uint32
	)
	if signed {
		s.nc++
		ch, nc = *s.ch, s.nc
	}
	s.mu.Unlock()

	auth := ""
	if signed {
		if !headerSafe(creds.Username) { // changed by SetCredentials since Post checked it
			return nil, 0, 0, fmt.Errorf("%s: %w", req.name, errBadUsername)
		}
		auth = authorization(creds, ch, nc, newCnonce())
	}
	raw := appendRequest(make([]byte, 0, 512+len(req.body)), s.hostHeader, auth, req.body)

	xctx, cancel := context.WithTimeout(ctx, s.timeout)
	start := time.Now()
	reply, err := s.relay.Exchange(xctx, raw)
	d = time.Since(start)
	cancel()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, 0, d, fmt.Errorf("%s: %w", req.name, ctx.Err())
		case errors.Is(xctx.Err(), context.DeadlineExceeded):
			return nil, 0, d, fmt.Errorf("%w %s within %s", ErrTimeout, req.name, s.timeout)
		default:
			return nil, 0, d, fmt.Errorf("%s: relay: %w", req.name, err)
		}
	}

	resp, perr := parseResponse(reply)
	if resp == nil {
		return nil, 0, d, fmt.Errorf("%s: %w", req.name, perr)
	}
	status = resp.status
	s.mu.Lock()
	s.authenticated = signed && status != 401
	s.mu.Unlock()

	switch {
	case status == 401:
		ch, err := parseChallenges(resp.header("WWW-Authenticate"))
		if err != nil {
			return nil, status, d, fmt.Errorf("%s: AMT answered 401 without a usable digest challenge: %w", req.name, err)
		}
		s.setChallenge(ch)
		return nil, status, d, nil
	case perr != nil:
		return nil, status, d, fmt.Errorf("%s: %w", req.name, perr)
	case status == 200:
		info, err := inspectEnvelope(resp.body)
		if err != nil {
			return nil, status, d, fmt.Errorf("%s: %w", req.name, err)
		}
		if info.fault {
			if f := parseFault(status, resp.body); f != nil {
				return nil, status, d, fmt.Errorf("%s: %w", req.name, f)
			}
		}
		if req.messageID != "" && info.hasRelatesTo && info.relatesTo != req.messageID {
			return nil, status, d, fmt.Errorf("%s: %w (RelatesTo %q, MessageID %q)", req.name, ErrStaleReply,
				printable(info.relatesTo, 64), printable(req.messageID, 64))
		}
		return resp.body, status, d, nil
	default:
		if f := parseFault(status, resp.body); f != nil {
			return nil, status, d, fmt.Errorf("%s: %w", req.name, f)
		}
		return nil, status, d, fmt.Errorf("%s: %w", req.name, &HTTPError{Status: status, Reason: resp.reason})
	}
}

// setChallenge caches a new challenge. The nonce count restarts only when the nonce changes: AMT may repeat a
// nonce in a new 401, and reusing a count under the same nonce would look like a replay.
func (s *session) setChallenge(ch challenge) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil || s.ch.nonce != ch.nonce {
		s.nc = 0
	}
	s.ch = &ch
}
