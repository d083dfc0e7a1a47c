package access

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

func controlCall(t *testing.T, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestControlHandler(t *testing.T) {
	logs := &syncBuffer{}
	g, err := Open(Options{Path: filepath.Join(t.TempDir(), "accounts.json"), Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := g.ControlHandler()
	const newPassword = "the second long password"
	var created TokenCreated
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/api/v1/accounts/password", `{"user":"admin","password":"` + testPassword + `"}`, 404, `"error":"Not Found","message":"no such admin account: admin"`},
		{"POST", "/api/v1/accounts/init", `{"user":"admin","password":"tiny-pw"}`, 400, "needs 12 to 256"},
		{"POST", "/api/v1/accounts/init", `{"user":"admin","password":"` + testPassword + `"}`, 201, `"message":"admin account admin created"`},
		{"POST", "/api/v1/accounts/init", `{"user":"other","password":"` + testPassword + `"}`, 409, `"error":"Conflict"`},
		{"POST", "/api/v1/accounts/init", `{"user":"other","password":"` + testPassword + `","admin":true}`, 400, `unknown field \"admin\"`},
		{"POST", "/api/v1/accounts/init", `{"user":"other","password":42}`, 400, `field \"password\" must be a string`},
		{"POST", "/api/v1/accounts/init", `{"user":"other","password":"` + testPassword, 400, "not the expected JSON object"},
		{"POST", "/api/v1/accounts/init", `{"user":"a"} {}`, 400, "data after the JSON object"},
		{"POST", "/api/v1/accounts/password", `{"user":"admin","password":"` + newPassword + `"}`, 200, "password of admin changed"},
		{"GET", "/api/v1/tokens", "", 200, "[]"},
		{"POST", "/api/v1/tokens", `{"name":"ci","scope":"root"}`, 400, "read or write"},
		{"POST", "/api/v1/tokens", `{"name":"ci","scope":"write"}`, 201, `"secret":"amte_`},
		{"POST", "/api/v1/tokens", `{"name":"ci","scope":"read"}`, 409, "already exists"},
		{"GET", "/api/v1/tokens", "", 200, `"name":"ci","scope":"write"`},
		{"DELETE", "/api/v1/tokens/nope", "", 404, "no such API token: nope"},
		{"DELETE", "/api/v1/tokens/ci", "", 200, "API token ci revoked"},
		{"PUT", "/api/v1/tokens", "", 405, `"error":"Method Not Allowed","message":"PUT is not allowed here: GET, POST"`},
		{"GET", "/api/v1/accounts/init", "", 405, `"message":"GET is not allowed here: POST"`},
		{"GET", "/api/v1/tokens/ci", "", 405, "DELETE"},
		{"GET", "/api/v1/accounts/list", "", 404, `"error":"Not Found"`},
	} {
		code, body := controlCall(t, h, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s: %d %s, want %d with %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.want)
		}
		if strings.Contains(body, testPassword) || strings.Contains(body, newPassword) || strings.Contains(body, "tiny-pw") {
			t.Errorf("%s %s: the answer echoes a password: %s", tc.method, tc.path, body)
		}
		if code == 201 && strings.Contains(body, "secret") {
			if err := json.Unmarshal([]byte(body), &created); err != nil {
				t.Fatal(err)
			}
		}
		if tc.method == "GET" && strings.Contains(body, "secret") {
			t.Errorf("the token list carries a secret: %s", body)
		}
	}
	if created.Secret == "" || strings.Contains(logs.String(), created.Secret) {
		t.Errorf("secret %q empty or logged", created.Secret)
	}
	code, body := controlCall(t, h, "POST", "/api/v1/accounts/init", "")
	if code != 400 || !strings.Contains(body, "empty") {
		t.Errorf("empty body: %d %s", code, body)
	}
	r := httptest.NewRequest("POST", "/api/v1/tokens", strings.NewReader(`name=x`))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("form body: %d", w.Code)
	}
	for _, want := range []string{"event=admin_account_changed user=admin action=init", "event=admin_account_changed user=admin action=password"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// TestNoSecretInLogs runs through every path that logs and checks that no password, token secret, session id or
// CSRF token reached the log or a refusal's answer.
func TestNoSecretInLogs(t *testing.T) {
	e := newEnv(t, Options{LoginAttempts: 2})
	const typo = "typo in the password!"
	secrets := []string{testPassword, typo, "mallory-password-1", "a fresh new password"}
	var answers []string
	keep := func(r resp) resp {
		answers = append(answers, r.body+strings.Join(r.header["Www-Authenticate"], ""))
		return r
	}
	login := func(from, user, pw string) resp {
		return keep(e.do(req{method: "POST", path: "/login", form: url.Values{"user": {user}, "password": {pw}}, sameOrigin: true, from: from}))
	}
	login("127.0.0.1", testUser, typo)
	login("127.0.0.1", "mallory-password-1", typo) // a password typed into the name field is not logged either
	login("127.0.0.1", testUser, testPassword)     // throttled
	r := login("127.0.0.2", testUser, testPassword)
	cookie := sessionCookie(t, r.header)
	e.g.mu.Lock()
	csrf := e.g.sessions[sha256Sum(cookie)].csrf
	e.g.mu.Unlock()
	secrets = append(secrets, cookie, csrf)
	token, err := e.g.CreateToken("robot", ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, token)
	keep(e.do(req{method: "POST", path: "/page", cookie: cookie, header: map[string]string{"Origin": "https://evil.example", CSRFHeader: csrf}}))
	keep(e.do(req{method: "POST", path: "/page", cookie: cookie, sameOrigin: true, header: map[string]string{CSRFHeader: csrf + "x"}}))
	keep(e.do(req{method: "POST", path: "/api/x", header: map[string]string{"Authorization": "Bearer " + token}}))
	keep(e.do(req{method: "GET", path: "/api/x", header: map[string]string{"Authorization": "Bearer " + token + "x"}}))
	keep(e.do(req{method: "GET", path: "/events", cookie: cookie, header: map[string]string{"Origin": "https://evil.example"}}))
	if err := e.g.SetPassword(testUser, "a fresh new password"); err != nil {
		t.Fatal(err)
	}
	if err := e.g.RevokeToken("robot"); err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	for _, want := range []string{"event=admin_login_failed", "event=admin_login ", "event=admin_request_refused",
		"event=admin_token_changed", "event=admin_account_changed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the scenario did not log %s:\n%s", want, logs)
		}
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%d chars) is in the log:\n%s", len(s), logs)
		}
		for _, a := range answers {
			if strings.Contains(a, s) {
				t.Errorf("a secret (%d chars) is in an answer: %s", len(s), a)
			}
		}
	}
}
