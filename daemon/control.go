package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/appliance/web"
)

// The control socket: the box's JSON API (appliance/web) on a unix socket, for the amtedge CLI. Every request is
// authorized by the peer's kernel credentials (SO_PEERCRED, SO_PEERGROUPS): root, the service's own user or
// group, or a member of group amtedge. The socket file's mode (0660) is the first gate, the peer check the second:
// a socket made world-writable by mistake still serves nobody else.

const (
	controlSocketName = "control.sock"
	controlGroup      = "amtedge"
	// packagedRuntimeDir is the RuntimeDirectory of the packaged unit: the CLI looks there, because it does not
	// run with the service's $RUNTIME_DIRECTORY.
	packagedRuntimeDir = "/run/amtedge"
)

// controlSocketPath is where the daemon listens: control.socket, else control.sock in $RUNTIME_DIRECTORY
// (systemd's RuntimeDirectory=amtedge sets it), else in stateDir.
func controlSocketPath(cfg *Config) string {
	if cfg.Control.Socket != "" {
		return cfg.path(cfg.Control.Socket)
	}
	if dir := runtimeDirectory(); dir != "" {
		return filepath.Join(dir, controlSocketName)
	}
	return filepath.Join(cfg.path(cfg.StateDir), controlSocketName)
}

// runtimeDirectory is the first entry of $RUNTIME_DIRECTORY (systemd joins several with ':').
func runtimeDirectory() string {
	dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":")
	return dir
}

// controlServer is the running control socket.
type controlServer struct {
	path   string
	srv    *http.Server
	served chan error
}

// startControl listens on the control socket and serves the API on it.
func (b *box) startControl() error {
	path := controlSocketPath(b.cfg)
	if err := removeStaleSocket(path); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket (control.socket): %w", err)
	}
	policy := newControlPolicy()
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	if policy.group >= 0 && uint32(policy.group) != policy.gid {
		// Members of group amtedge pass the file's mode too; without the right (CAP_CHOWN or membership) the
		// socket keeps the service's group, which the peer check allows as well.
		if err := os.Chown(path, -1, int(policy.group)); err != nil {
			b.log.Debug("control socket keeps the service's group", "path", path, "err", err)
		}
	}
	api := http.NewServeMux()
	api.Handle("/", web.New(b.webConfig()))
	// `amtedge admin`: accounts and API tokens, only here on the peer-authorized socket (appliance/access).
	accounts := b.access.ControlHandler()
	for _, p := range []string{"/api/v1/accounts/", "/api/v1/tokens", "/api/v1/tokens/"} {
		api.Handle(p, accounts)
	}
	c := &controlServer{path: path, served: make(chan error, 1)}
	c.srv = &http.Server{
		Handler:           policy.authorize(withPeerActor(api), b.log),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerOf(conn))
		},
	}
	go func() { c.served <- c.srv.Serve(ln) }()
	b.control = c
	b.log.Info("control socket ready", "path", path)
	return nil
}

// stopControl closes the control socket and removes its file.
func (b *box) stopControl(grace time.Duration) {
	c := b.control
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := c.srv.Shutdown(ctx); err != nil {
		_ = c.srv.Close()
	}
	if err := <-c.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		b.log.Error("control socket failed", "err", err)
	}
	if err := os.Remove(c.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		b.log.Warn("control socket file not removed", "path", c.path, "err", err)
	}
}

// removeStaleSocket removes a socket file left by a box that did not stop cleanly; a socket someone still
// answers on, or a file that is not a socket, is an error.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("another amtedge is serving on %s", path)
	}
	return os.Remove(path)
}

// boxView is the box as the API sees it.
type boxView struct {
	b        *box
	sealMode string // custody.seal as started; a reload does not change the seal
	listen   string
}

func (v *boxView) Status(ctx context.Context) web.Status {
	b := v.b
	vaultWord, _, vaultDetail := b.vaultState()
	st := web.Status{Seal: web.Seal{Mode: v.sealMode, State: "ok"}, Vault: web.Vault{State: vaultWord, Detail: vaultDetail},
		Listen: v.listen, Version: version, Started: b.started}
	if b.degraded != "" {
		st.Seal.State, st.Seal.Reason = "degraded", b.degraded+" (run amtedge store recover)"
	}
	if b.store == nil {
		st.Outbox.Error = "degraded: the sealed store is not open"
	} else if n, oldest, err := b.store.OutboxSummary(ctx); err != nil {
		st.Outbox.Error = err.Error()
	} else {
		st.Outbox.Length = n
		if n > 0 {
			st.Outbox.Oldest = &oldest
		}
	}
	return st
}

// peer is the kernel's word on who is at the other end of a control connection.
type peer struct {
	uid, gid uint32
	pid      int32
	groups   []uint32 // supplementary groups (SO_PEERGROUPS); nil when the kernel cannot tell
	err      error
}

type peerKey struct{}

// peerOf reads the peer's credentials, as they were when it connected.
func peerOf(conn net.Conn) peer {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return peer{err: fmt.Errorf("not a unix connection: %T", conn)}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{err: err}
	}
	var p peer
	cerr := raw.Control(func(fd uintptr) {
		cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		if err != nil {
			p.err = fmt.Errorf("SO_PEERCRED: %w", err)
			return
		}
		p.uid, p.gid, p.pid = cred.Uid, cred.Gid, cred.Pid
		p.groups = peerGroups(fd)
	})
	if cerr != nil {
		return peer{err: cerr}
	}
	return p
}

// soPeerGroups is Linux's SO_PEERGROUPS (4.13+), which package syscall does not name.
const soPeerGroups = 0x3b

// peerGroups returns the peer's supplementary groups, or nil when the kernel does not say.
func peerGroups(fd uintptr) []uint32 {
	buf := make([]uint32, 64)
	for range 3 {
		size := uint32(len(buf) * 4)
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.SOL_SOCKET, soPeerGroups,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch errno {
		case 0:
			return buf[:size/4]
		case syscall.ERANGE:
			buf = make([]uint32, size/4+1)
		default:
			return nil
		}
	}
	return nil
}

// controlPolicy says who may use the control socket.
type controlPolicy struct {
	uid, gid uint32 // the daemon's own
	group    int64  // gid of group amtedge; -1 when the group does not exist
}

func newControlPolicy() controlPolicy {
	p := controlPolicy{uid: uint32(os.Getuid()), gid: uint32(os.Getgid()), group: -1}
	if g, err := user.LookupGroup(controlGroup); err == nil {
		if gid, err := strconv.ParseUint(g.Gid, 10, 32); err == nil {
			p.group = int64(gid)
		}
	}
	return p
}

func (p controlPolicy) allows(pr peer) bool {
	if pr.err != nil {
		return false
	}
	if pr.uid == 0 || pr.uid == p.uid || pr.gid == p.gid {
		return true
	}
	return p.group >= 0 && (pr.gid == uint32(p.group) || slices.Contains(pr.groups, uint32(p.group)))
}

// authorize answers refused peers 403 and logs them.
func (p controlPolicy) authorize(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, _ := r.Context().Value(peerKey{}).(peer)
		if p.allows(pr) {
			next.ServeHTTP(w, r)
			return
		}
		attrs := []any{"event", events.ControlRefused, "peer_uid", pr.uid, "peer_gid", pr.gid, "peer_pid", pr.pid,
			"method", r.Method, "path", r.URL.Path}
		if pr.err != nil {
			attrs = append(attrs, "err", pr.err.Error())
		}
		log.Warn("control socket request refused", attrs...)
		web.WriteJSON(w, http.StatusForbidden, web.ErrorBody{Error: "Forbidden",
			Message: fmt.Sprintf("uid %d may not use the amtedge control socket: run as root or a member of group %s", pr.uid, controlGroup)})
	})
}
