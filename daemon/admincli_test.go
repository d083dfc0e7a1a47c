package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/amtedge/amtedge/appliance/access"
)

// runAdmin runs `amtedge admin ARGS` with stdin as the password source; the exit code is run's.
func runAdmin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := adminCommand(args, strings.NewReader(stdin), &out, &errOut)
	code := 0
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		code = 2
		errOut.WriteString(err.Error())
	default:
		code = 1
		errOut.WriteString(err.Error())
	}
	return code, out.String(), errOut.String()
}

// The admin CLI against a real box over its control socket: init, passwd, token create/list/revoke, and the
// token it printed works on the box's API guard.
func TestAdminCLI(t *testing.T) {
	b, s, logs := startControlBox(t, "")
	sock := filepath.Join(s.dir, "state", controlSocketName)
	const pw1, pw2 = "first admin password", "second admin password"

	if code, _, errOut := runAdmin(t, "", "init", "--socket", sock); code != 1 || !strings.Contains(errOut, "no password on standard input") {
		t.Errorf("init without a password: %d %s", code, errOut)
	}
	if code, _, errOut := runAdmin(t, "short\n", "init", "--socket", sock); code != 1 || !strings.Contains(errOut, "the password has 5 characters: it needs 12 to 256") {
		t.Errorf("init with a short password: %d %s", code, errOut)
	}
	code, out, errOut := runAdmin(t, pw1+"\r\n", "init", "--socket", sock)
	if code != 0 || !strings.Contains(out, "admin account admin created") {
		t.Fatalf("init: %d %s%s", code, out, errOut)
	}
	if !b.access.HasAccounts() {
		t.Fatal("the box has no account after init")
	}
	if code, _, errOut := runAdmin(t, pw2+"\n", "init", "--user", "other", "--socket", sock); code != 1 || !strings.Contains(errOut, "an admin account already exists") {
		t.Errorf("second init: %d %s", code, errOut)
	}
	if code, out, errOut := runAdmin(t, pw2+"\n", "passwd", "--socket", sock); code != 0 || !strings.Contains(out, "password of admin changed; its browser sessions ended") {
		t.Errorf("passwd: %d %s%s", code, out, errOut)
	}
	if code, _, errOut := runAdmin(t, pw2+"\n", "passwd", "--user", "nobody", "--socket", sock); code != 1 || !strings.Contains(errOut, "no such admin account: nobody") {
		t.Errorf("passwd of nobody: %d %s", code, errOut)
	}
	fi, err := os.Stat(filepath.Join(s.dir, "state", "accounts.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("accounts.json: %v %v", fi, err)
	}

	code, out, errOut = runAdmin(t, "", "token", "create", "ci", "--scope", "read", "--socket", sock)
	if code != 0 || !strings.Contains(out, "API token ci (scope read) created") || !strings.Contains(out, "it is not shown again") {
		t.Fatalf("token create: %d %s%s", code, out, errOut)
	}
	secret := regexp.MustCompile(`amte_[A-Za-z0-9_-]{43}`).FindString(out)
	if secret == "" {
		t.Fatalf("no secret in %q", out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"token", "create", "ci2"}, 2, "--scope is required"},
		{[]string{"token", "create", "--scope", "read"}, 2, "usage: amtedge admin token create NAME"},
		{[]string{"token", "create", "ci", "--scope", "read"}, 1, "already exists"},
		{[]string{"token", "create", "deploy", "--scope", "admin"}, 1, `token scope "admin" is not valid: read or write`},
		{[]string{"token", "create", "Bad Name", "--scope", "read"}, 1, `token name "Bad Name" is not valid`},
		{[]string{"token", "list"}, 0, "ci    read   "},
		{[]string{"token", "revoke", "nope"}, 1, "no such API token: nope"},
		{[]string{"token", "frob"}, 2, `unknown admin token command "frob"`},
		{[]string{"frob"}, 2, `unknown admin command "frob"`},
	} {
		code, out, errOut := runAdmin(t, "", append(tc.args, "--socket", sock)...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: %d %s%s, want %d with %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
		if strings.Contains(out+errOut, secret) {
			t.Errorf("%v shows the secret again", tc.args)
		}
	}
	code, out, _ = runAdmin(t, "", "token", "list", "--json", "--socket", sock)
	var list []access.TokenInfo
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Name != "ci" {
		t.Errorf("token list --json: %d %s", code, out)
	}

	// The printed secret is the box's: a read token reads through the guard and may not write.
	api := httptest.NewServer(b.access.API(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := b.access.User(r)
		fmt.Fprint(w, user)
	})))
	defer api.Close()
	call := func(method string) (int, string) {
		r, _ := http.NewRequest(method, api.URL+"/api/v1/health", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	if code, body := call("GET"); code != 200 || body != "token:ci" {
		t.Errorf("GET with the token: %d %s", code, body)
	}
	if code, _ := call("POST"); code != 403 {
		t.Errorf("POST with a read token: %d", code)
	}
	if code, out, errOut := runAdmin(t, "", "token", "revoke", "ci", "--socket", sock); code != 0 || !strings.Contains(out, "API token ci revoked") {
		t.Fatalf("revoke: %d %s%s", code, out, errOut)
	}
	if code, _ := call("GET"); code != 401 {
		t.Errorf("GET with a revoked token: %d", code)
	}
	if code, out, _ := runAdmin(t, "", "token", "list", "--socket", sock); code != 0 || !strings.Contains(out, "no API tokens") {
		t.Errorf("list after revoke: %d %s", code, out)
	}
	// `amtedge admin` reaches adminCommand through run.
	if code, out, errOut := runCLI(t, "admin", "token", "list", "--socket", sock); code != 0 || !strings.Contains(out, "no API tokens") {
		t.Errorf("run admin token list: %d %s%s", code, out, errOut)
	}

	all := logs.String()
	for _, want := range []string{"event=admin_account_changed user=admin action=init", "event=admin_account_changed user=admin action=password",
		"event=admin_token_changed name=ci scope=read action=create", "event=admin_token_changed name=ci scope=read action=revoke"} {
		if !strings.Contains(all, want) {
			t.Errorf("the box did not log %q", want)
		}
	}
	for _, secretText := range []string{pw1, pw2, secret} {
		if strings.Contains(all, secretText) {
			t.Errorf("a secret (%d chars) is in the box's log", len(secretText))
		}
	}
}
