package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests hash with small argon2id parameters so -race runs stay short; TestPasswordHashRoundTrip checks the
// production defaults explicitly.
func TestMain(m *testing.M) {
	hashParams = argonParams{memory: 64, time: 1, threads: 1, saltLen: 16, keyLen: 32}
	os.Exit(m.Run())
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const (
	testUser     = "admin"
	testPassword = "correct horse battery"
)

type env struct {
	t     *testing.T
	g     *Guard
	clock *clock
	logs  *syncBuffer
	path  string
	srv   *httptest.Server
}

// newEnv opens a Guard with an admin account and serves it over TLS:
//
//	POST /login (form user, password)   Login
//	POST /logout                        Page(Logout)
//	/page                               Page(echo)
//	/events                             Stream(echo)
//	/api/                               API(echo)
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), logs: &syncBuffer{}}
	e.path = filepath.Join(t.TempDir(), "accounts.json")
	opts.Path, opts.Now = e.path, e.clock.Now
	opts.Log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.InitAdmin(testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	e.g = g
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, csrf := g.User(r)
		fmt.Fprintf(w, "user=%s method=%s csrf-set=%v", user, r.Method, csrf != "")
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := g.Login(w, r, r.PostFormValue("user"), r.PostFormValue("password")); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "signed in")
	})
	mux.Handle("POST /logout", g.Page(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.Logout(w, r)
		fmt.Fprint(w, "signed out")
	})))
	mux.Handle("/page", g.Page(echo))
	mux.Handle("/events", g.Stream(echo))
	mux.Handle("/api/", g.API(echo))
	e.srv = httptest.NewTLSServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// req describes one request; zero fields are left out.
type req struct {
	method, path string
	form         url.Values
	header       map[string]string
	cookie       string // the session cookie's value
	sameOrigin   bool   // send Origin: the server's own origin
	from         string // local IP to connect from (default 127.0.0.1)
}

type resp struct {
	code   int
	body   string
	header http.Header
}

func (e *env) do(r req) resp {
	e.t.Helper()
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.sameOrigin {
		hr.Header.Set("Origin", e.srv.URL)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: SessionCookie, Value: r.cookie})
	}
	client := e.client(r.from)
	res, err := client.Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{code: res.StatusCode, body: string(b), header: res.Header}
}

// client connects from the given loopback address (so tests can be several sources), follows no redirects.
func (e *env) client(from string) *http.Client {
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: e.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	if from != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}
	}
	tr.DisableKeepAlives = true
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login signs in and returns the session cookie's value and the session's CSRF token.
func (e *env) login(user, password string) (string, string) {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/login", form: url.Values{"user": {user}, "password": {password}}, sameOrigin: true})
	if r.code != 200 {
		e.t.Fatalf("login: %d %s", r.code, r.body)
	}
	cookie := sessionCookie(e.t, r.header)
	g := e.g
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sessions[sha256Sum(cookie)]
	if s == nil {
		e.t.Fatal("login: no session for the cookie")
	}
	return cookie, s.csrf
}

func sha256Sum(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }

func sessionCookie(t *testing.T, h http.Header) string {
	t.Helper()
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == SessionCookie {
			return c.Value
		}
	}
	t.Fatalf("no %s cookie in %v", SessionCookie, h["Set-Cookie"])
	return ""
}
