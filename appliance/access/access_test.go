package access

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	h, err := hashPassword(testPassword, defaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=3,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Fatalf("hash %q is not the PHC string of the defaults", h)
	}
	p, salt, key, err := parsePHC(h)
	if err != nil || p.memory != 65536 || p.time != 3 || p.threads != 2 || len(salt) != 16 || len(key) != 32 {
		t.Fatalf("parsePHC: %+v %d %d %v", p, len(salt), len(key), err)
	}
	if formatPHC(p, salt, key) != h {
		t.Error("format(parse(h)) != h")
	}
	for pw, want := range map[string]bool{testPassword: true, testPassword + " ": false, "": false, "Correct horse battery": false} {
		if ok, err := verifyPassword(pw, h); ok != want || err != nil {
			t.Errorf("verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	h2, _ := hashPassword(testPassword, defaultParams)
	if h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

func TestParsePHCRefuses(t *testing.T) {
	good, _ := hashPassword("x", argonParams{memory: 64, time: 1, threads: 1, saltLen: 16, keyLen: 32})
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for _, tc := range []struct{ in, want string }{
		{"", "not a PHC string"},
		{"argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key, "not a PHC string"},
		{"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, "not argon2id"},
		{"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, "version is not 19"},
		{"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key, "parameter 1 is not m="},
		{"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key, "parameter m is not a number"},
		{"$argon2id$v=19$m=64,t=1$" + salt + "$" + key, "m=…,t=…,p=…"},
		{"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, "t must be"},
		{"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, "p must be"},
		{"$argon2id$v=19$m=99999999,t=1,p=1$" + salt + "$" + key, "m must be"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key, "outside base64"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "\r", "outside base64"},
		{"$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key, "salt is not"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:10], "hash is not"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$", "not a PHC string"},
	} {
		if _, _, _, err := parsePHC(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parsePHC(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestAccountsPersistAndInitOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "accounts.json")
	g, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if g.HasAccounts() {
		t.Fatal("a new Guard has accounts")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open wrote the file: %v", err)
	}
	for _, tc := range []struct{ user, pw, want string }{
		{"Admin", testPassword, "user name \"Admin\" is not valid"},
		{"", testPassword, "user name \"\" is not valid"},
		{"1admin", testPassword, "not valid"},
		{strings.Repeat("a", 33), testPassword, "not valid"},
		{"admin", "short", "the password has 5 characters: it needs 12 to 256"},
		{"admin", strings.Repeat("x", 257), "257 characters"},
		{"administrator", "Administrator", "may not be the user name"},
		{"admin", "tab\tinside password", "control character"},
		{"admin", "bad utf8 \xff\xfe password", "not valid UTF-8"},
	} {
		err := g.InitAdmin(tc.user, tc.pw)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("InitAdmin(%q) = %v, want %q", tc.user, err, tc.want)
		}
		if err != nil && len(tc.pw) > 4 && strings.Contains(err.Error(), tc.pw) {
			t.Errorf("error quotes the password: %v", err)
		}
	}
	if err := g.InitAdmin("admin", testPassword); err != nil {
		t.Fatal(err)
	}
	if err := g.InitAdmin("second", "another long password"); !errors.Is(err, ErrInitialized) {
		t.Fatalf("second InitAdmin = %v, want ErrInitialized", err)
	}
	secret, err := g.CreateToken("ci", ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("accounts file mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), testPassword) || strings.Contains(string(data), secret) {
		t.Fatalf("the accounts file holds a secret:\n%s", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}

	g2, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if !g2.HasAccounts() {
		t.Fatal("the account did not persist")
	}
	if err := g2.InitAdmin("admin", testPassword); !errors.Is(err, ErrInitialized) {
		t.Errorf("InitAdmin after reopen = %v", err)
	}
	if toks := g2.Tokens(); len(toks) != 1 || toks[0].Name != "ci" || toks[0].Scope != ScopeRead {
		t.Errorf("tokens after reopen: %+v", toks)
	}
	if _, ok := g2.useToken(secret); !ok {
		t.Error("the token does not work after reopen")
	}
	g2.mu.Lock()
	ok, err := verifyPassword(testPassword, g2.accounts["admin"].hash)
	g2.mu.Unlock()
	if !ok || err != nil {
		t.Errorf("the stored password does not verify after reopen: %v", err)
	}
	if err := g2.SetPassword("nobody", "a long new password"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("SetPassword(nobody) = %v", err)
	}
	if err := g2.SetPassword("admin", "a long new password"); err != nil {
		t.Fatal(err)
	}
	g3, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	g3.mu.Lock()
	ok, _ = verifyPassword("a long new password", g3.accounts["admin"].hash)
	g3.mu.Unlock()
	if !ok {
		t.Error("the new password did not persist")
	}
}

func TestOpenRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hash, _ := hashPassword(testPassword, hashParams)
	for _, tc := range []struct{ name, content string }{
		{"garbage", "{not json"},
		{"version", `{"version":2,"accounts":[],"tokens":[]}`},
		{"unknown", `{"version":1,"accounts":[],"tokens":[],"extra":1}`},
		{"badhash", `{"version":1,"accounts":[{"user":"admin","hash":"$argon2id$nope"}],"tokens":[]}`},
		{"dupuser", `{"version":1,"accounts":[{"user":"admin","hash":"` + hash + `"},{"user":"admin","hash":"` + hash + `"}],"tokens":[]}`},
		{"badscope", `{"version":1,"accounts":[],"tokens":[{"name":"x","scope":"all","sha256":"` + strings.Repeat("ab", 32) + `"}]}`},
		{"badsha", `{"version":1,"accounts":[],"tokens":[{"name":"x","scope":"read","sha256":"AB"}]}`},
		{"trailing", `{"version":1,"accounts":[],"tokens":[]} {}`},
	} {
		if _, err := Open(Options{Path: write(tc.name, tc.content, 0o600)}); err == nil || !strings.Contains(err.Error(), "accounts file") {
			t.Errorf("%s: Open = %v, want an accounts file error", tc.name, err)
		} else if strings.Contains(err.Error(), hash) {
			t.Errorf("%s: the error quotes a hash: %v", tc.name, err)
		}
	}
	loose := write("loose", `{"version":1,"accounts":[],"tokens":[]}`, 0o644)
	if _, err := Open(Options{Path: loose}); err == nil || !strings.Contains(err.Error(), "must be 0600") {
		t.Errorf("mode 0644: Open = %v", err)
	}
	if _, err := Open(Options{Path: write("ok", `{"version":1,"accounts":[{"user":"admin","hash":"`+hash+`"}],"tokens":[]}`, 0o600)}); err != nil {
		t.Errorf("valid file: %v", err)
	}
	if _, err := Open(Options{}); err == nil {
		t.Error("Open without a path succeeded")
	}
	if _, err := Open(Options{Path: loose, IdleTimeout: -time.Second}); err == nil {
		t.Error("a negative idle timeout was accepted")
	}
}

func TestSessionIdleAndAbsoluteExpiry(t *testing.T) {
	e := newEnv(t, Options{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour})
	cookie, _ := e.login(testUser, testPassword)
	if r := e.do(req{method: "GET", path: "/page", cookie: cookie}); r.code != 200 || !strings.Contains(r.body, "user=admin method=GET csrf-set=true") {
		t.Fatalf("page: %d %s", r.code, r.body)
	}
	// Used every 9 minutes it lives on past the idle timeout, until the absolute one.
	for range 6 {
		e.clock.Add(9 * time.Minute)
		if r := e.do(req{method: "GET", path: "/page", cookie: cookie}); r.code != 200 {
			t.Fatalf("at %s: %d", e.clock.Now(), r.code)
		}
	}
	e.clock.Add(6 * time.Minute) // 60 minutes after sign-in
	r := e.do(req{method: "GET", path: "/page?x=1", cookie: cookie})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Fpage%3Fx%3D1" {
		t.Fatalf("after the absolute timeout: %d %q", r.code, r.header.Get("Location"))
	}
	// Idle: 10 minutes without use.
	cookie, _ = e.login(testUser, testPassword)
	e.clock.Add(10 * time.Minute)
	if r := e.do(req{method: "GET", path: "/api/x", cookie: cookie}); r.code != http.StatusUnauthorized ||
		!strings.Contains(r.body, `"error":"Unauthorized"`) || !strings.Contains(r.body, "session ended") {
		t.Fatalf("after the idle timeout: %d %s", r.code, r.body)
	}
	// A page's background polls do not keep a session alive: only use does.
	cookie, _ = e.login(testUser, testPassword)
	poll := map[string]string{BackgroundHeader: "1", "HX-Request": "true"}
	for range 2 {
		e.clock.Add(4 * time.Minute)
		if r := e.do(req{method: "GET", path: "/page", cookie: cookie, header: poll}); r.code != 200 {
			t.Fatalf("poll at %s: %d", e.clock.Now(), r.code)
		}
	}
	e.clock.Add(4 * time.Minute)
	if r := e.do(req{method: "GET", path: "/page", cookie: cookie, header: poll}); r.code != http.StatusSeeOther {
		t.Fatalf("12 minutes of background polls kept the session alive past its 10-minute idle timeout: %d", r.code)
	}
	// Once ended it stays ended.
	e.clock.Add(-5 * time.Minute)
	if r := e.do(req{method: "GET", path: "/page", cookie: cookie}); r.code != http.StatusSeeOther {
		t.Fatalf("an ended session came back: %d", r.code)
	}
}

func TestLogoutAndPasswordChangeEndSessions(t *testing.T) {
	e := newEnv(t, Options{})
	cookie, csrf := e.login(testUser, testPassword)
	r := e.do(req{method: "POST", path: "/logout", cookie: cookie, sameOrigin: true, form: url.Values{CSRFField: {csrf}}})
	if r.code != 200 {
		t.Fatalf("logout: %d %s", r.code, r.body)
	}
	if !strings.Contains(strings.Join(r.header["Set-Cookie"], "\n"), SessionCookie+"=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict") {
		t.Errorf("logout does not clear the cookie: %q", r.header["Set-Cookie"])
	}
	if r := e.do(req{method: "GET", path: "/page", cookie: cookie}); r.code != http.StatusSeeOther {
		t.Fatalf("the session survived logout: %d", r.code)
	}
	c1, _ := e.login(testUser, testPassword)
	c2, _ := e.login(testUser, testPassword)
	if err := e.g.SetPassword(testUser, "a brand new password"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{c1, c2} {
		if r := e.do(req{method: "GET", path: "/page", cookie: c}); r.code != http.StatusSeeOther {
			t.Errorf("a session survived the password change: %d", r.code)
		}
	}
	if !strings.Contains(e.logs.String(), "event=admin_account_changed user=admin action=password sessions_ended=2") {
		t.Errorf("logs:\n%s", e.logs)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, Options{})
	cookie, csrf := e.login(testUser, testPassword)
	other, otherCSRF := e.login(testUser, testPassword)
	_ = other
	for _, tc := range []struct {
		name string
		r    req
		code int
	}{
		{"no token", req{method: "POST", path: "/page", form: url.Values{"a": {"1"}}}, 403},
		{"wrong token", req{method: "POST", path: "/page", form: url.Values{CSRFField: {"nope"}}}, 403},
		{"another session's token", req{method: "POST", path: "/page", header: map[string]string{CSRFHeader: otherCSRF}}, 403},
		{"form field", req{method: "POST", path: "/page", form: url.Values{CSRFField: {csrf}}}, 200},
		{"header", req{method: "DELETE", path: "/page", header: map[string]string{CSRFHeader: csrf}}, 200},
		{"API without token", req{method: "POST", path: "/api/x"}, 403},
		{"API with header", req{method: "PUT", path: "/api/x", header: map[string]string{CSRFHeader: csrf}}, 200},
		{"GET needs none", req{method: "GET", path: "/page"}, 200},
	} {
		tc.r.cookie, tc.r.sameOrigin = cookie, true
		r := e.do(tc.r)
		if r.code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, r.code, r.body, tc.code)
		}
		if tc.code == 403 && !strings.Contains(r.body, "CSRF token") {
			t.Errorf("%s: body %q does not say why", tc.name, r.body)
		}
	}
	if !strings.Contains(e.logs.String(), `event=admin_request_refused remote=127.0.0.1:`) ||
		!strings.Contains(e.logs.String(), `reason="missing CSRF token"`) || !strings.Contains(e.logs.String(), `reason="wrong CSRF token"`) {
		t.Errorf("refusals not logged:\n%s", e.logs)
	}
	// Without a session a POST to a page is refused, not redirected.
	if r := e.do(req{method: "POST", path: "/page", sameOrigin: true}); r.code != 403 {
		t.Errorf("POST without a session: %d", r.code)
	}
}

func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t, Options{})
	cookie, csrf := e.login(testUser, testPassword)
	evil := map[string]string{"Origin": "https://evil.example", CSRFHeader: csrf}
	for _, tc := range []struct {
		name string
		r    req
		code int
	}{
		{"POST page from evil", req{method: "POST", path: "/page", header: evil}, 403},
		{"POST API from evil", req{method: "POST", path: "/api/x", header: evil}, 403},
		{"SSE from evil", req{method: "GET", path: "/events", header: map[string]string{"Origin": "https://evil.example", "Accept": "text/event-stream"}}, 403},
		{"WebSocket from evil", req{method: "GET", path: "/events", header: map[string]string{"Origin": "https://evil.example",
			"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}}, 403},
		{"SSE cross-site fetch", req{method: "GET", path: "/events", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
		{"SSE same-site other origin", req{method: "GET", path: "/events", header: map[string]string{"Sec-Fetch-Site": "same-site"}}, 403},
		{"SSE without any origin header", req{method: "GET", path: "/events"}, 403},
		{"POST with Origin null", req{method: "POST", path: "/page", header: map[string]string{"Origin": "null", CSRFHeader: csrf}}, 403},
		{"POST without Origin or Referer", req{method: "POST", path: "/page", header: map[string]string{CSRFHeader: csrf}}, 403},
		{"POST with evil Referer", req{method: "POST", path: "/page", header: map[string]string{CSRFHeader: csrf, "Referer": "https://evil.example/x"}}, 403},
		// Accepted: the box's own origin, by Origin, Sec-Fetch-Site or Referer.
		{"SSE same origin", req{method: "GET", path: "/events", sameOrigin: true}, 200},
		{"SSE Sec-Fetch-Site", req{method: "GET", path: "/events", header: map[string]string{"Sec-Fetch-Site": "same-origin"}}, 200},
		{"POST own Referer", req{method: "POST", path: "/page", header: map[string]string{CSRFHeader: csrf, "Referer": e.srv.URL + "/page"}}, 200},
		{"POST same origin", req{method: "POST", path: "/page", sameOrigin: true, header: map[string]string{CSRFHeader: csrf}}, 200},
	} {
		tc.r.cookie = cookie
		if r := e.do(tc.r); r.code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, r.code, r.body, tc.code)
		}
	}
	// Without a session a stream is refused too.
	if r := e.do(req{method: "GET", path: "/events", sameOrigin: true}); r.code != 403 {
		t.Errorf("stream without a session: %d", r.code)
	}
	if !strings.Contains(e.logs.String(), `event=admin_request_refused remote=127.0.0.1:`) ||
		!strings.Contains(e.logs.String(), `origin=https://evil.example reason="cross-origin request" method=POST path=/page`) {
		t.Errorf("refusal not logged:\n%s", e.logs)
	}
	// A login form posted from another site is refused before the password is looked at.
	r := e.do(req{method: "POST", path: "/login", form: url.Values{"user": {testUser}, "password": {testPassword}},
		header: map[string]string{"Origin": "https://evil.example"}})
	if r.code != 401 || !strings.Contains(r.body, ErrCrossOrigin.Error()) || len(r.header["Set-Cookie"]) != 0 {
		t.Errorf("cross-origin login: %d %s %v", r.code, r.body, r.header["Set-Cookie"])
	}
}

func TestCookieAttributes(t *testing.T) {
	e := newEnv(t, Options{AbsoluteTimeout: 2 * time.Hour})
	r := e.do(req{method: "POST", path: "/login", form: url.Values{"user": {testUser}, "password": {testPassword}}, sameOrigin: true})
	if r.code != 200 {
		t.Fatalf("login: %d %s", r.code, r.body)
	}
	sc := r.header["Set-Cookie"]
	if len(sc) != 1 {
		t.Fatalf("Set-Cookie: %q", sc)
	}
	re := regexp.MustCompile(`^__Host-amtedge_session=([A-Za-z0-9_-]{43}); Path=/; Max-Age=7200; HttpOnly; Secure; SameSite=Strict$`)
	if !re.MatchString(sc[0]) {
		t.Fatalf("Set-Cookie %q does not match %s", sc[0], re)
	}
	if strings.Contains(sc[0], "Domain") {
		t.Error("a __Host- cookie must not carry Domain")
	}
	// Each sign-in gets a new id; the id a browser brought along ends.
	first := sessionCookie(t, r.header)
	r = e.do(req{method: "POST", path: "/login", form: url.Values{"user": {testUser}, "password": {testPassword}}, sameOrigin: true, cookie: first})
	second := sessionCookie(t, r.header)
	if second == first {
		t.Fatal("the session id did not change at sign-in")
	}
	if r := e.do(req{method: "GET", path: "/page", cookie: first}); r.code != http.StatusSeeOther {
		t.Errorf("the previous session lives on: %d", r.code)
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, Options{LoginAttempts: 5, LoginWindow: 5 * time.Minute})
	login := func(from, pw string) resp {
		return e.do(req{method: "POST", path: "/login", form: url.Values{"user": {testUser}, "password": {pw}}, sameOrigin: true, from: from})
	}
	for i := range 5 {
		if r := login("127.0.0.1", "wrong password "+string(rune('a'+i))); r.code != 401 || !strings.Contains(r.body, "wrong user name or password") {
			t.Fatalf("attempt %d: %d %s", i+1, r.code, r.body)
		}
		e.clock.Add(10 * time.Second)
	}
	// The 6th is refused, right password or not, without a check.
	r := login("127.0.0.1", testPassword)
	if r.code != 401 || !strings.Contains(r.body, "too many failed sign-ins from your address; try again in 250 s") ||
		r.header.Get("Retry-After") != "250" {
		t.Fatalf("6th attempt: %d %s %v", r.code, r.body, r.header)
	}
	if !strings.Contains(e.logs.String(), `event=admin_login_failed remote=127.0.0.1:`) || !strings.Contains(e.logs.String(), `reason="too many attempts"`) {
		t.Errorf("throttling not logged:\n%s", e.logs)
	}
	// Another source is not affected.
	if r := login("127.0.0.2", testPassword); r.code != 200 {
		t.Fatalf("another source: %d %s", r.code, r.body)
	}
	// An unknown user name counts like a wrong password.
	for range 5 {
		e.do(req{method: "POST", path: "/login", form: url.Values{"user": {"mallory"}, "password": {"whatever it is"}}, sameOrigin: true, from: "127.0.0.3"})
	}
	if r := login("127.0.0.3", testPassword); !strings.Contains(r.body, "too many failed sign-ins") {
		t.Errorf("unknown names are not counted: %d %s", r.code, r.body)
	}
	// When the window ends the source may try again.
	e.clock.Add(250 * time.Second)
	if r := login("127.0.0.1", testPassword); r.code != 200 {
		t.Fatalf("after the window: %d %s", r.code, r.body)
	}
}

func TestLimiterBounds(t *testing.T) {
	now := time.Now()
	l := newLimiter(2, time.Minute, 3)
	for _, k := range []string{"a", "b", "c", "d"} {
		for range 2 { // each sign-in attempt is charged before its password is checked
			if _, blocked := l.take(k, now); blocked {
				t.Fatalf("source %s blocked before its %d attempts", k, l.attempts)
			}
		}
		now = now.Add(time.Second)
	}
	if len(l.entries) != 3 || l.order.Len() != 3 {
		t.Fatalf("table holds %d/%d entries, cap 3", len(l.entries), l.order.Len())
	}
	// A blocked take charges nothing; an unblocked one charges a's first attempt anew (evicting b, now the oldest).
	if _, blocked := l.take("a", now); blocked {
		t.Error("the oldest source was not evicted")
	}
	if _, blocked := l.take("d", now); !blocked {
		t.Error("the newest source is not blocked")
	}
	for in, want := range map[string]string{"192.0.2.1:443": "192.0.2.1", "[2001:db8::1]:1": "2001:db8::/64",
		"[2001:db8::2%eth0]:1": "2001:db8::/64", "[::ffff:192.0.2.9]:5": "192.0.2.9", "pipe": "pipe"} {
		if got := sourceKey(in); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSessionTableBounded(t *testing.T) {
	e := newEnv(t, Options{})
	first, _ := e.login(testUser, testPassword)
	e.g.mu.Lock()
	for i := range maxSessions - 1 {
		s := &session{key: sha256Sum(string(rune(i)) + "filler"), user: testUser, created: e.clock.Now(), lastUsed: e.clock.Now()}
		s.el = e.g.order.PushBack(s)
		e.g.sessions[s.key] = s
	}
	e.g.mu.Unlock()
	e.login(testUser, testPassword)
	e.g.mu.Lock()
	n := len(e.g.sessions)
	e.g.mu.Unlock()
	if n != maxSessions {
		t.Errorf("%d sessions, cap %d", n, maxSessions)
	}
	if r := e.do(req{method: "GET", path: "/page", cookie: first}); r.code != http.StatusSeeOther {
		t.Errorf("the oldest session was not the one to end: %d", r.code)
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t, Options{})
	read, err := e.g.CreateToken("reader", ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	write, err := e.g.CreateToken("writer", ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^amte_[A-Za-z0-9_-]{43}$`).MatchString(read) {
		t.Errorf("token %q is not amte_ + 32 bytes base64url", read)
	}
	if _, err := e.g.CreateToken("reader", ScopeWrite); !errors.Is(err, ErrTokenExists) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := e.g.CreateToken("bad", "admin"); err == nil || !strings.Contains(err.Error(), "read or write") {
		t.Errorf("bad scope: %v", err)
	}
	bearer := func(s string) map[string]string { return map[string]string{"Authorization": "Bearer " + s} }
	for _, tc := range []struct {
		name   string
		r      req
		code   int
		inBody string
	}{
		{"read GET", req{method: "GET", path: "/api/x", header: bearer(read)}, 200, "user=token:reader method=GET csrf-set=false"},
		{"read HEAD", req{method: "HEAD", path: "/api/x", header: bearer(read)}, 200, ""},
		{"read POST", req{method: "POST", path: "/api/x", header: bearer(read)}, 403, `"error":"Forbidden"`},
		{"read DELETE", req{method: "DELETE", path: "/api/x", header: bearer(read)}, 403, "scope read"},
		{"write POST", req{method: "POST", path: "/api/x", header: bearer(write)}, 200, "user=token:writer method=POST"},
		{"lower-case scheme", req{method: "GET", path: "/api/x", header: map[string]string{"Authorization": "bearer " + read}}, 200, ""},
		{"unknown token", req{method: "GET", path: "/api/x", header: bearer("amte_" + strings.Repeat("A", 43))}, 401, `"error":"Unauthorized"`},
		{"basic auth", req{method: "GET", path: "/api/x", header: map[string]string{"Authorization": "Basic YWRtaW46eA=="}}, 401, "Bearer"},
		{"nothing", req{method: "GET", path: "/api/x"}, 401, "sign in"},
		// A token is no ambient credential: no CSRF or origin checks apply.
		{"write from elsewhere", req{method: "POST", path: "/api/x", header: map[string]string{"Authorization": "Bearer " + write, "Origin": "https://evil.example"}}, 200, ""},
	} {
		r := e.do(tc.r)
		if r.code != tc.code || !strings.Contains(r.body, tc.inBody) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, r.code, r.body, tc.code, tc.inBody)
		}
		if r.code == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, r.header.Get("WWW-Authenticate"))
		}
	}
	toks := e.g.Tokens()
	if len(toks) != 2 || toks[0].Name != "reader" || toks[0].LastUsed.IsZero() || toks[0].Created.IsZero() {
		t.Errorf("tokens: %+v", toks)
	}
	if err := e.g.RevokeToken("reader"); err != nil {
		t.Fatal(err)
	}
	if err := e.g.RevokeToken("reader"); !errors.Is(err, ErrNoSuchToken) {
		t.Errorf("revoke twice: %v", err)
	}
	r := e.do(req{method: "GET", path: "/api/x", header: bearer(read)})
	if r.code != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="amtedge", error="invalid_token"` {
		t.Errorf("revoked token: %d %v", r.code, r.header)
	}
	logs := e.logs.String()
	for _, want := range []string{"event=admin_token_changed name=reader scope=read action=create",
		"event=admin_token_changed name=reader scope=read action=revoke", "event=admin_token_changed name=writer scope=write action=create"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	// Last use is written to the file at most hourly.
	e.clock.Add(2 * time.Hour)
	e.do(req{method: "GET", path: "/api/x", header: bearer(write)})
	g2, err := Open(Options{Path: e.path})
	if err != nil {
		t.Fatal(err)
	}
	if toks := g2.Tokens(); len(toks) != 1 || !toks[0].LastUsed.Equal(e.clock.Now()) {
		t.Errorf("last use not persisted: %+v (now %s)", toks, e.clock.Now())
	}
}

func TestPageRedirectAndSafeNext(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do(req{method: "GET", path: "/page?q=a%20b"})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Fpage%3Fq%3Da%2520b" {
		t.Errorf("redirect: %d %q", r.code, r.header.Get("Location"))
	}
	for in, want := range map[string]string{"/devices": "/devices", "/d?x=1": "/d?x=1", "//evil.example/": "/",
		"/\\evil.example": "/", "https://evil.example/": "/", "devices": "/", "": "/", "/a\nb": "/", "/%2F%2Fx": "/%2F%2Fx"} {
		if got := SafeNext(in); got != want {
			t.Errorf("SafeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoginErrors(t *testing.T) {
	dir := t.TempDir()
	g, err := Open(Options{Path: filepath.Join(dir, "a.json")})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest("POST", "https://box/login", nil)
	r.Header.Set("Origin", "https://box")
	r.RemoteAddr = "192.0.2.1:1000"
	if err := g.Login(discardWriter{}, r, "admin", testPassword); !errors.Is(err, ErrNoAccounts) ||
		err.Error() != "no admin account yet: run `amtedge admin init` on the box" {
		t.Errorf("no accounts: %v", err)
	}
	if err := g.InitAdmin("admin", testPassword); err != nil {
		t.Fatal(err)
	}
	if err := g.Login(discardWriter{}, r, "admin", "not the password"); !errors.Is(err, ErrBadCredentials) ||
		err.Error() != "wrong user name or password" {
		t.Errorf("bad password: %v", err)
	}
	if err := g.Login(discardWriter{}, r, "nobody", testPassword); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("unknown user: %v", err)
	}
	if err := g.Login(discardWriter{}, r, "admin", strings.Repeat("x", 5000)); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("over-long password: %v", err)
	}
	if got := (&ThrottledError{RetryAfter: 1500 * time.Millisecond}).Error(); got != "too many failed sign-ins from your address; try again in 2 s" {
		t.Errorf("ThrottledError: %q", got)
	}
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

// Sign-ins sent in parallel from one source, all waiting for a hashing slot, are charged before they hash: at
// most loginAttempts of them ever check a password.
func TestLoginRateLimitParallel(t *testing.T) {
	g, err := Open(Options{Path: filepath.Join(t.TempDir(), "accounts.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.InitAdmin(testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	for range cap(g.slots) { // occupy every hashing slot: the sign-ins below queue after the limit check
		g.slots <- struct{}{}
	}
	const n = 30
	errs := make(chan error, n)
	for range n {
		go func() {
			r := httptest.NewRequest("POST", "https://box/login", strings.NewReader(""))
			r.Host = "box"
			r.Header.Set("Origin", "https://box")
			r.RemoteAddr = "192.0.2.7:1234"
			errs <- g.Login(httptest.NewRecorder(), r, testUser, "wrong password guess")
		}()
	}
	// Every sign-in has either been refused at once or is waiting for a slot; then let them hash.
	throttled := 0
	var te *ThrottledError
	for throttled < n-DefaultLoginAttempts {
		if err := <-errs; !errors.As(err, &te) {
			t.Fatalf("before any slot was free a sign-in ended with %v, want it throttled", err)
		}
		throttled++
	}
	for range cap(g.slots) {
		<-g.slots
	}
	for range DefaultLoginAttempts {
		if err := <-errs; !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("a charged sign-in ended with %v, want wrong credentials", err)
		}
	}
}

// A form carrying its CSRF token in a field is read by the guard within MaxFormBytes, in memory: a multipart
// upload larger than that is refused before any handler (or Go's 32 MiB default) sees it.
func TestCSRFMultipartBounded(t *testing.T) {
	e := newEnv(t, Options{})
	cookie, csrf := e.login(testUser, testPassword)
	post := func(fileBytes int) resp {
		t.Helper()
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField(CSRFField, csrf)
		fw, _ := mw.CreateFormFile("provisioningCert", "cert.pfx")
		_, _ = fw.Write(bytes.Repeat([]byte{0x30}, fileBytes))
		_ = mw.Close()
		hr, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/page", &body)
		hr.Header.Set("Content-Type", mw.FormDataContentType())
		hr.Header.Set("Origin", e.srv.URL)
		hr.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
		res, err := e.client("").Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return resp{code: res.StatusCode, body: string(b)}
	}
	if r := post(10 << 10); r.code != 200 {
		t.Fatalf("a 10 KiB upload with its CSRF field: %d %s", r.code, r.body)
	}
	if r := post(2 << 20); r.code != 403 || !strings.Contains(r.body, "larger than 1 MiB") {
		t.Fatalf("a 2 MiB upload: %d %s", r.code, r.body)
	}
}

// A stream opened with a session ends when the session does (here: sign-out from another tab).
func TestStreamEndsWithSession(t *testing.T) {
	e := newEnv(t, Options{})
	e.g.streamCheck = 20 * time.Millisecond
	started, ended := make(chan struct{}), make(chan struct{})
	srv := httptest.NewTLSServer(e.g.Stream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		close(started)
		<-r.Context().Done()
		close(ended)
	})))
	defer srv.Close()
	cookie, csrf := e.login(testUser, testPassword)
	hr, _ := http.NewRequest(http.MethodGet, srv.URL+"/stream", nil)
	hr.Header.Set("Origin", srv.URL)
	hr.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
	res, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	<-started
	select {
	case <-ended:
		t.Fatal("the stream ended while its session lived")
	case <-time.After(100 * time.Millisecond):
	}
	if r := e.do(req{method: "POST", path: "/logout", cookie: cookie, sameOrigin: true, form: url.Values{CSRFField: {csrf}}}); r.code != 200 {
		t.Fatalf("logout: %d", r.code)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream still runs after its session ended")
	}
}
