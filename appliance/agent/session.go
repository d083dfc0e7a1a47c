package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ErrAgentGone is returned (wrapped) by Exchange when the agent's connection ended.
var ErrAgentGone = errors.New("the agent closed the connection")

// Session is one agent connection after its first message was accepted. Its flow runs on one goroutine (the
// one that calls the Handler); a second goroutine reads frames. Exactly one WSMAN request is in flight at a time.
type Session struct {
	id      string
	remote  string
	req     *Request
	conn    *websocket.Conn
	server  *Server
	started time.Time

	responses chan []byte   // decoded `response` payloads; capacity 1, newest wins
	readDone  chan struct{} // closed when the reader stops
	readErr   error         // why the reader stopped; read only after readDone is closed

	mu       sync.Mutex
	step     string
	terminal bool
}

// ID is the connection's random client id (RPS's clientId).
func (s *Session) ID() string { return s.id }

// RemoteAddr is the agent's address.
func (s *Session) RemoteAddr() string { return s.remote }

// Request is the agent's validated first message.
func (s *Session) Request() *Request { return s.req }

// SetStep records what the flow is doing now, for live views of sessions.
func (s *Session) SetStep(step string) {
	s.mu.Lock()
	s.step = step
	s.mu.Unlock()
}

// Step is what the flow is doing now.
func (s *Session) Step() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.step
}

// Exchange sends one raw HTTP request to the device as a `wsman` message and waits for the agent's `response`.
// It implements wsman.Relay. rpc-go stays silent when AMT does not answer, so the caller's ctx must carry the
// per-request timeout.
func (s *Session) Exchange(ctx context.Context, request []byte) ([]byte, error) {
	// A reply that arrived after an earlier request timed out is stale: drop it before asking again.
	select {
	case <-s.responses:
	default:
	}
	payload := base64.StdEncoding.EncodeToString(request)
	if err := s.write(Envelope{Method: "wsman", Status: "ok", Payload: &payload}); err != nil {
		return nil, err
	}
	select {
	case reply := <-s.responses:
		return reply, nil
	case <-s.readDone:
		return nil, s.readErr
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Progress sends a `progress` message, only to agents that advertise support: rpc-go v3 would take it for a
// WSMAN request (rps-protocol.md §2.5).
func (s *Session) Progress(label string) {
	if !s.req.Payload.ProgressSupported {
		return
	}
	_ = s.write(Envelope{Method: "progress", Status: "ok", Message: label})
}

// Succeed ends the session with a `success` message carrying the JSON status object (§2.11).
func (s *Session) Succeed(st Status) error {
	return s.finish(Envelope{Method: "success", Status: "success", Message: st.String()})
}

// Fail ends the session with an `error` message carrying the JSON status object.
func (s *Session) Fail(st Status) error {
	return s.finish(Envelope{Method: "error", Status: "failed", Message: st.String()})
}

// Refuse ends the session with an `error` message in plain text, as RPS answers validation failures that happen
// before any WSMAN exchange (§2.11). The text is written for the technician.
func (s *Session) Refuse(text string) error {
	return s.finish(Envelope{Method: "error", Status: "failed", Message: text})
}

// Ended reports whether a terminal message was sent.
func (s *Session) Ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.terminal
}

func (s *Session) finish(env Envelope) error {
	s.mu.Lock()
	if s.terminal {
		s.mu.Unlock()
		return errors.New("session already ended")
	}
	s.terminal = true
	s.mu.Unlock()
	// The flow is done with the device: free it before the agent hears the result, so an agent that starts its
	// next command at once is not refused as a second session.
	s.server.release(s)
	return s.write(env)
}

// write sends one envelope; only the flow goroutine writes data frames.
func (s *Session) write(env Envelope) error {
	return writeEnvelope(s.conn, s.server.cfg.AppVersion, env, s.server.cfg.WriteTimeout)
}

func writeEnvelope(conn *websocket.Conn, appVersion string, env Envelope, timeout time.Duration) error {
	env.APIKey = "xxxxx"
	env.AppVersion = appVersion
	env.ProtocolVersion = ProtocolVersion
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if err := conn.WriteJSON(env); err != nil {
		return fmt.Errorf("send %s message to agent: %w", env.Method, err)
	}
	return nil
}

// readLoop runs for the life of the connection after the first message: it hands `response` payloads to the flow
// and stops at the first frame that breaks the protocol, recording why.
func (s *Session) readLoop() {
	defer close(s.readDone)
	for {
		env, err := readEnvelope(s.conn)
		if err != nil {
			s.readErr = err
			return
		}
		switch env.Method {
		case "response":
			reply, err := decodePayload(env)
			if err != nil {
				s.readErr = err
				return
			}
			select {
			case s.responses <- reply:
			default: // an unsolicited extra reply is in the slot: the newest wins
				select {
				case <-s.responses:
				default:
				}
				s.responses <- reply
			}
		case "heartbeat_response":
			// rpc-go answers heartbeats; accepted and ignored (RPS rejects them — §2.12).
		default:
			s.readErr = clientErrorf("Device %s Not a supported method received from AMT device", s.req.Payload.UUID)
			return
		}
	}
}

func decodePayload(env Envelope) ([]byte, error) {
	if env.Payload == nil {
		return nil, clientErrorf("Error: Failed to parse client message payload. The response message carries no payload.")
	}
	b, err := base64.StdEncoding.DecodeString(*env.Payload)
	if err != nil {
		return nil, clientErrorf("Error: Failed to parse client message payload. The response payload is not valid base64: %v", err)
	}
	return b, nil
}

// readEnvelope reads one frame, enforcing the protocol's limits: text frames only, at most MaxFrameBytes.
func readEnvelope(conn *websocket.Conn) (Envelope, error) {
	mt, r, err := conn.NextReader()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Envelope{}, fmt.Errorf("%w (%v)", ErrAgentGone, err)
		}
		return Envelope{}, fmt.Errorf("%w: %v", ErrAgentGone, err)
	}
	if mt != websocket.TextMessage {
		return Envelope{}, clientErrorf("Error: the agent sent a binary frame; the RPS protocol uses text frames with one JSON message each")
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxFrameBytes+1))
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrAgentGone, err)
	}
	if len(data) > MaxFrameBytes {
		// Read the rest of the frame (bounded) so that closing the connection does not reset it before the agent
		// has read our error message.
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(r, 16<<20))
		return Envelope{}, clientErrorf("Error: the agent sent a message larger than %d bytes; the box refuses it", MaxFrameBytes)
	}
	return DecodeEnvelope(data)
}
