package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/amtedge/amtedge/appliance/events"
)

// Handler runs the flow an agent asked for. It ends the session with s.Succeed or s.Fail; if it returns without
// doing so, or panics, the server sends an `error` itself so the agent never hangs.
type Handler interface {
	Serve(ctx context.Context, s *Session)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, s *Session)

// Serve calls f.
func (f HandlerFunc) Serve(ctx context.Context, s *Session) { f(ctx, s) }

// Config tunes the agent endpoint. Zero values take the defaults below.
type Config struct {
	AppVersion          string        // sent in every envelope's appVersion
	FirstMessageTimeout time.Duration // from upgrade to the first message; default 30 s
	SessionTimeout      time.Duration // whole session bound; default 10 min
	WriteTimeout        time.Duration // per frame written; default 10 s
	CloseGrace          time.Duration // after the terminal message, how long to wait for the agent to close; default 2 s
	MaxSessions         int           // live sessions at once; default 20,000
	// AllowedNetworks, when not empty, are the only source networks agents may connect from (a box serves its
	// own LAN segment); others get an `error` message saying so, and nothing else.
	AllowedNetworks []netip.Prefix
	Logger          *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.FirstMessageTimeout <= 0 {
		c.FirstMessageTimeout = 30 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Minute
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.CloseGrace <= 0 {
		c.CloseGrace = 2 * time.Second
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 20000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server accepts agent WebSocket connections on any path (RPS ignores the path; rpc-go uses /activate) and runs
// one Session per connection.
type Server struct {
	cfg      Config
	handler  Handler
	upgrader websocket.Upgrader

	mu       sync.Mutex
	byUUID   map[string]*Session
	draining bool
	wg       sync.WaitGroup
	baseCtx  context.Context
	cancel   context.CancelFunc
}

// NewServer makes the agent endpoint; serve it with an http.Server over TLS.
func NewServer(cfg Config, h Handler) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:     cfg.withDefaults(),
		handler: h,
		upgrader: websocket.Upgrader{
			// Small buffers and a shared write pool keep an idle session cheap (thousands per box).
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			WriteBufferPool: &sync.Pool{},
			// rpc-go sends no Origin header; agents are not browsers, so no origin applies here.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		byUUID:  map[string]*Session{},
		baseCtx: ctx,
		cancel:  cancel,
	}
}

// SessionInfo is a snapshot of one live session, for status views.
type SessionInfo struct {
	ID, UUID, Verb, Profile, Remote, Step string
	Started                               time.Time
}

// Live is how many sessions are running now (cheaper than len(Sessions()): no copy, no sort).
func (srv *Server) Live() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.byUUID)
}

// Sessions lists the live sessions, oldest first.
func (srv *Server) Sessions() []SessionInfo {
	srv.mu.Lock()
	out := make([]SessionInfo, 0, len(srv.byUUID))
	for _, s := range srv.byUUID {
		out = append(out, SessionInfo{ID: s.id, UUID: s.req.Payload.UUID, Verb: s.req.Verb, Profile: s.req.Method.Profile,
			Remote: s.remote, Step: s.Step(), Started: s.started})
	}
	srv.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// Drain stops accepting sessions and waits for the live ones to end, up to ctx; then it cancels what is left.
// Flows keep custody writes out of this cancellation, so a password written before a send is never lost.
func (srv *Server) Drain(ctx context.Context) error {
	srv.mu.Lock()
	srv.draining = true
	srv.mu.Unlock()
	done := make(chan struct{})
	go func() { srv.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		srv.cancel()
		<-done
		return fmt.Errorf("sessions still running when the drain timed out: %w", ctx.Err())
	}
}

// ServeHTTP upgrades the connection and runs the session to its end.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := srv.upgrader.Upgrade(w, r, nil)
	if err != nil {
		srv.cfg.Logger.Info("agent connection refused", "remote", r.RemoteAddr, "err", err)
		return // the upgrader already answered with an HTTP error
	}
	if err := srv.admitNetwork(r.RemoteAddr); err != nil {
		// Read the agent's first message before answering, so closing does not reset the connection under the
		// agent's feet before it has read why.
		_ = conn.SetReadDeadline(time.Now().Add(srv.cfg.WriteTimeout))
		_, _ = readEnvelope(conn)
		srv.refuse(conn, srv.cfg.Logger.With("remote", r.RemoteAddr), err)
		_ = conn.Close()
		return
	}
	// The session runs on a fresh goroutine and this one (net/http's, whose stack grew during the TLS handshake)
	// ends: thousands of sessions waiting for AMT then cost a small stack each, not a handshake-sized one.
	go srv.serveConn(conn, r.RemoteAddr)
}

// admitNetwork checks the agent's address against AllowedNetworks.
func (srv *Server) admitNetwork(remote string) error {
	if len(srv.cfg.AllowedNetworks) == 0 {
		return nil
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return clientErrorf("Error: this box cannot tell the agent's address (%s); it serves listed networks only", remote)
	}
	addr := ap.Addr().Unmap()
	for _, p := range srv.cfg.AllowedNetworks {
		if p.Contains(addr) {
			return nil
		}
	}
	nets := make([]string, len(srv.cfg.AllowedNetworks))
	for i, p := range srv.cfg.AllowedNetworks {
		nets[i] = p.String()
	}
	return clientErrorf("Error: this box serves agents from %s only; this PC's address %s is not among them. "+
		"Use the provisioning box of this PC's network segment.", strings.Join(nets, ", "), addr)
}

func (srv *Server) serveConn(conn *websocket.Conn, remote string) {
	defer conn.Close()
	s := &Session{
		id:        newClientID(),
		remote:    remote,
		conn:      conn,
		server:    srv,
		responses: make(chan []byte, 1),
		readDone:  make(chan struct{}),
	}
	log := srv.cfg.Logger.With("client", s.id, "remote", remote)

	_ = conn.SetReadDeadline(time.Now().Add(srv.cfg.FirstMessageTimeout))
	env, err := readEnvelope(conn)
	if err != nil {
		srv.refuse(conn, log, err)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	req, err := ParseRequest(env, s.id)
	if err != nil {
		srv.refuse(conn, log, err)
		return
	}
	s.req = req
	log = log.With("device", req.Payload.UUID, "verb", req.Verb)

	if err := srv.admit(s); err != nil {
		srv.refuse(conn, log, err)
		return
	}
	defer srv.wg.Done()

	ctx, cancel := context.WithTimeout(srv.baseCtx, srv.cfg.SessionTimeout)
	defer cancel()
	go s.readLoop()

	log.Info("agent session started", "profile", req.Method.Profile, "agent_version", req.AppVersion)
	srv.runHandler(ctx, s, log)
	srv.release(s) // normally done already when the terminal message was sent
	srv.closeGracefully(s)
}

// runHandler runs the flow and guarantees a terminal message.
func (srv *Server) runHandler(ctx context.Context, s *Session, log *slog.Logger) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("flow panicked", "panic", fmt.Sprint(p), "step", s.Step(), "stack", string(debug.Stack()))
			if !s.Ended() {
				_ = s.Fail(Status{Status: fmt.Sprintf("Device %s: the box hit an internal error during %q and stopped; "+
					"the error is in the box's log. Retry the command; if it repeats, report it.", s.req.Payload.UUID, s.Step())})
			}
		}
	}()
	srv.handler.Serve(ctx, s)
	if !s.Ended() {
		log.Error("flow ended without a result", "step", s.Step())
		_ = s.Fail(Status{Status: fmt.Sprintf("Device %s: the box ended the session without a result during %q; "+
			"the error is in the box's log. Retry the command.", s.req.Payload.UUID, s.Step())})
	}
}

// closeGracefully closes the WebSocket after the terminal message: rpc-go closes on its own once it has read it;
// the box waits a moment for that, then closes itself.
func (srv *Server) closeGracefully(s *Session) {
	// rpc-go closes as soon as it has the terminal message; a close frame from us first would make it log a
	// spurious error after a successful run (RPS never closes). So: wait for the agent, then close.
	select {
	case <-s.readDone:
	case <-time.After(srv.cfg.CloseGrace):
		_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(srv.cfg.WriteTimeout))
	}
}

func (srv *Server) admit(s *Session) error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	uuid := s.req.Payload.UUID
	if srv.draining {
		return clientErrorf("Device %s: the box is shutting down and takes no new sessions; retry in a minute.", uuid)
	}
	if other, ok := srv.byUUID[uuid]; ok {
		return clientErrorf("Device %s already has a session in progress on this box (%s, from %s, started %s); "+
			"wait for it to end or stop the other agent, then retry.", uuid, other.req.Verb, other.remote,
			other.started.UTC().Format(time.RFC3339))
	}
	if len(srv.byUUID) >= srv.cfg.MaxSessions {
		return clientErrorf("Device %s: the box is serving its maximum of %d sessions; retry in a minute.", uuid, srv.cfg.MaxSessions)
	}
	s.started = time.Now()
	srv.byUUID[uuid] = s
	srv.wg.Add(1)
	return nil
}

func (srv *Server) release(s *Session) {
	srv.mu.Lock()
	if srv.byUUID[s.req.Payload.UUID] == s {
		delete(srv.byUUID, s.req.Payload.UUID)
	}
	srv.mu.Unlock()
}

// refuse answers a session that cannot start with a plain-text `error` and closes it.
func (srv *Server) refuse(conn *websocket.Conn, log *slog.Logger, err error) {
	var ce *ClientError
	if !errors.As(err, &ce) {
		// The agent is gone or the read timed out: nothing can be sent.
		log.Info("agent session ended before it started", "err", err)
		return
	}
	log.Info("agent request refused", "event", events.AgentRefused, "reason", ce.Text)
	_ = writeEnvelope(conn, srv.cfg.AppVersion, Envelope{Method: "error", Status: "failed", Message: ce.Text}, srv.cfg.WriteTimeout)
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, ""),
		time.Now().Add(srv.cfg.WriteTimeout))
}

func newClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:4]) + "-" + hex.EncodeToString(b[4:6]) + "-" + hex.EncodeToString(b[6:8]) + "-" +
		hex.EncodeToString(b[8:10]) + "-" + hex.EncodeToString(b[10:])
}
