package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/amtedge/amtedge/appliance/access"
	"github.com/amtedge/amtedge/appliance/amtsim"
	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/appliance/ui/uitest"
)

// The end-to-end browser test drives Debian's Chromium against the REAL box (startAdminBox: sealed store,
// catalog, accounts, agent listener and admin listener wired as `serve` wires them), with simulated rpc-go agents
// and AMT firmware (appliance/amtsim) activating against the box's agent listener while the browser watches.
// appliance/ui's own browser test covers the pages against fakes; this one proves the wiring: what a technician
// creates in the UI is what the agents get, what the agents do shows up live in the UI, and a device-supplied
// string stays text all the way from the agent's payload to the DOM.

// Secrets of this test: none may appear in a log line.
const (
	e2eAdminUser     = "tech"
	e2eAdminPassword = "browser test admin pw"
	e2eAMTPassword   = "Lab-Ccm-P4ss!word7"
	e2ePFXPassword   = "lab pfx password"
	e2eLabSuffix     = "lab.example.com"
	e2eXSSHostname   = `<img src=x onerror=alert(1)>`
	e2eXSSSuffix     = `<b>lab</b>.example.com`
)

func TestBrowserEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; run without -short")
	}
	start := time.Now()
	bx, site, logs := startAdminBox(t, "")
	sock := filepath.Join(site.dir, "state", controlSocketName)
	adminURL := "https://" + bx.admin.listener.Addr().String()
	agentURL := "wss://" + bx.listener.Addr().String() + "/activate"

	// The first admin account, the way an operator makes it: `amtedge admin init` over the control socket.
	if code, out, errOut := runAdmin(t, e2eAdminPassword+"\n", "init", "--user", e2eAdminUser, "--socket", sock); code != 0 ||
		!strings.Contains(out, "admin account "+e2eAdminUser+" created") {
		t.Fatalf("admin init: exit %d: %s%s", code, out, errOut)
	}
	code, out, errOut := runAdmin(t, "", "token", "create", "ro", "--scope", "read", "--socket", sock)
	readToken := regexp.MustCompile(`amte_[A-Za-z0-9_-]{43}`).FindString(out)
	if code != 0 || readToken == "" {
		t.Fatalf("token create: exit %d: %s%s", code, out, errOut)
	}

	br := uitest.Start(t)

	// 1. Signed out, / sends the browser to the sign-in page; signing in brings it back to the dashboard.
	br.Do("open the box signed out", chromedp.Navigate(adminURL+"/"), uitest.WaitText("main h1", "Sign in"))
	if loc, err := chromedp.Run(br.Ctx, chromedp.Location()); err != nil || !strings.HasPrefix(loc, adminURL+"/login") {
		t.Errorf("signed out, / ended at %q (%v), want %s/login", loc, err, adminURL)
	}
	br.Screenshot("e2e-login")
	br.Do("sign in",
		chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), e2eAdminUser),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), e2eAdminPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
		uitest.WaitText("main h1", "Dashboard"),
		uitest.WaitText("main .tiles", "Sealed store"),
		uitest.WaitText("main .tiles", "software"),
		uitest.WaitText("main", "demo.amtedge.test"), // the site's domain tile
	)
	br.Check()

	// 2. A CCM profile with a static AMT password, through the form.
	br.Do("fill the profile form",
		chromedp.Navigate(adminURL+"/profiles/new"),
		uitest.WaitText("main h1", "New profile"),
		chromedp.SendKeys(chromedp.CSS(`input[name="profileName"]`), "lab-ccm"),
		// The form defaults to random passwords; this box has no Vault and no standalone consent, so static.
		chromedp.Click(chromedp.CSS(`input[name="generateRandomPassword"]`)),
		chromedp.Click(chromedp.CSS(`input[name="generateRandomMEBxPassword"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="amtPassword"]`), e2eAMTPassword),
		chromedp.SendKeys(chromedp.CSS(`input[name="tags"]`), "lab, e2e"),
	)
	br.Do("save the profile",
		chromedp.Click(chromedp.CSS(`form.editor button[type="submit"]`)),
		uitest.WaitText(".alert.good", "lab-ccm"),
		uitest.WaitText("main table", "lab-ccm"),
	)
	br.Screenshot("e2e-profiles")
	br.Check()
	if p, ok := bx.catalog.Catalog.Profile("lab-ccm"); !ok || p.Activation != "ccmactivate" {
		t.Fatalf("the box's catalog after the UI saved lab-ccm: %+v %v", p, ok)
	}

	// 3. A domain for lab.example.com: its PFX uploaded through the form, previewed, saved.
	notAfter := time.Now().Add(90*24*time.Hour + 12*time.Hour).UTC().Truncate(time.Second)
	pfx, labRoot, err := domains.GenerateProvisioningPFX(domains.GenerateOptions{Suffix: e2eLabSuffix,
		Password: e2ePFXPassword, NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	pfxPath := filepath.Join(t.TempDir(), "lab.pfx")
	if err := os.WriteFile(pfxPath, pfx, 0o600); err != nil {
		t.Fatal(err)
	}
	expiry := notAfter.Format("2006-01-02 15:04:05Z")
	br.Do("fill the domain form and see the preview",
		chromedp.Navigate(adminURL+"/domains/new"),
		uitest.WaitText("main h1", "New domain"),
		chromedp.SendKeys(chromedp.CSS(`input[name="profileName"]`), "lab"),
		chromedp.SendKeys(chromedp.CSS(`input[name="domainSuffix"]`), e2eLabSuffix),
		chromedp.SendKeys(chromedp.CSS(`input[name="provisioningCertPassword"]`), e2ePFXPassword),
		chromedp.SetUploadFiles(chromedp.CSS(`#pfx`), []string{pfxPath}),
		uitest.WaitText("#preview-result", "provision."+e2eLabSuffix),
		uitest.WaitText("#preview-result", "matches"),
		uitest.WaitText("#preview-result", "present"),
		uitest.WaitText("#preview-result", labRoot),
		uitest.WaitText("#preview-result", "expires in 90d"),
		uitest.WaitText("#preview-result", expiry),
	)
	br.Screenshot("e2e-domain-preview")
	br.Do("save the domain",
		chromedp.Click(chromedp.CSS(`button[name="step"][value="save"]`)),
		uitest.WaitText(".alert.good", "lab"),
		uitest.WaitText("main table", e2eLabSuffix),
		uitest.WaitText("main table", expiry),
		uitest.WaitText("main table", "expires in 90d"),
	)
	br.Screenshot("e2e-domains")
	br.Check()

	// 4. Activations while the activity page is open: records arrive over SSE, without a reload.
	br.Do("open the activity page", chromedp.Navigate(adminURL+"/activity"), uitest.WaitText("main h1", "Activity"))
	markPage(t, br)
	ccmUUID := amtsim.DeviceUUID("e2e-ccm", 0)
	acmUUID := amtsim.DeviceUUID("e2e-acm", 0)
	failUUID := amtsim.DeviceUUID("e2e-fail", 0)
	xssUUID := amtsim.DeviceUUID("e2e-xss", 0)
	agentTLS := site.tlsConfig(t)
	// simulate runs one device's `activate --profile`; it also runs on a goroutine of its own, so it reports with
	// Errorf (a zero result, which every caller's mode check then refuses) rather than Fatalf.
	simulate := func(profile string, dev amtsim.DeviceConfig, ag amtsim.AgentConfig, latency time.Duration) amtsim.DeviceResult {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		dev.Latency = latency
		ag.Command, ag.Profile, ag.Progress = "activate", profile, true
		sum := amtsim.Simulate(ctx, amtsim.SimulateConfig{URL: agentURL, TLS: agentTLS.Clone(), Profile: profile, Devices: 1,
			Device: func(int) amtsim.DeviceConfig { return dev },
			Agent:  func(int, *amtsim.Device) amtsim.AgentConfig { return ag }})
		if len(sum.Results) != 1 {
			t.Errorf("simulate %s: %d results", profile, len(sum.Results))
			return amtsim.DeviceResult{}
		}
		return sum.Results[0]
	}
	if r := simulate("lab-ccm", amtsim.DeviceConfig{UUID: ccmUUID, DHCPDNSSuffix: e2eLabSuffix, Hostname: "lab-pc-1"},
		amtsim.AgentConfig{}, 0); r.ModeAfter != amtsim.ModeCCM {
		t.Fatalf("CCM activation with the UI's profile: %+v", r)
	}
	br.Do("see the CCM activation live",
		uitest.WaitText("#activity-rows", events.ActivationSucceeded),
		uitest.WaitText("#activity-rows", ccmUUID))
	// ACM needs the domain uploaded above: the device's DHCP suffix selects it, and it trusts its root.
	if r := simulate("acm", amtsim.DeviceConfig{UUID: acmUUID, DHCPDNSSuffix: e2eLabSuffix, Hostname: "lab-pc-2",
		TrustedRootHashes: []string{labRoot}}, amtsim.AgentConfig{}, 0); r.ModeAfter != amtsim.ModeACM {
		t.Fatalf("ACM activation with the UI's domain: %+v", r)
	}
	br.Do("see the ACM activation live", uitest.WaitText("#activity-rows", acmUUID))
	if r := simulate("no-such-profile", amtsim.DeviceConfig{UUID: failUUID, DHCPDNSSuffix: e2eLabSuffix, Hostname: "lab-pc-3"},
		amtsim.AgentConfig{}, 0); r.UUID != failUUID || r.Result.Succeeded() || r.ModeAfter != amtsim.ModePreProvisioning {
		t.Fatalf("activation with an unknown profile did not fail: %+v", r)
	}
	br.Do("see the failed activation live",
		uitest.WaitText("#activity-rows", events.ActivationFailed),
		uitest.WaitText("#activity-rows", failUUID))
	// The operating system, not the firmware, names the host: the agent reports markup in payload.hostname and
	// payload.fqdn, while the firmware keeps a valid AMT host name (it refuses to store markup).
	if r := simulate("lab-ccm", amtsim.DeviceConfig{UUID: xssUUID, DHCPDNSSuffix: e2eLabSuffix, Hostname: "lab-pc-xss"},
		amtsim.AgentConfig{Hostname: e2eXSSHostname, DNSSuffix: e2eXSSSuffix}, 0); r.ModeAfter != amtsim.ModeCCM {
		t.Fatalf("CCM activation of the device reporting markup: %+v", r)
	}
	br.Do("see the XSS device's record live", uitest.WaitText("#activity-rows", xssUUID))
	checkNotReloaded(t, br, "activity")
	br.Screenshot("e2e-activity")
	br.Check()

	// 5. The dashboard follows too: a session in progress in its sessions tile, a new failure in recent failures.
	br.Do("open the dashboard", chromedp.Navigate(adminURL+"/"), uitest.WaitText("main h1", "Dashboard"),
		uitest.WaitText("#failures", failUUID))
	markPage(t, br)
	slowUUID := amtsim.DeviceUUID("e2e-slow", 0)
	fail2UUID := amtsim.DeviceUUID("e2e-fail", 1)
	// A failing device that reports markup as its host name: the failures tile shows it, as text.
	if r := simulate("no-such-profile", amtsim.DeviceConfig{UUID: fail2UUID, DHCPDNSSuffix: e2eLabSuffix, Hostname: "lab-pc-4"},
		amtsim.AgentConfig{Hostname: e2eXSSHostname}, 0); r.UUID != fail2UUID || r.Result.Succeeded() {
		t.Fatalf("activation with an unknown profile did not fail: %+v", r)
	}
	br.Do("see the new failure", uitest.WaitText("#failures", fail2UUID), uitest.WaitText("#failures", e2eXSSHostname))
	slow := make(chan amtsim.DeviceResult, 1)
	go func() {
		// Slow firmware keeps the session open long enough for the 3-second sessions poll to see it.
		slow <- simulate("lab-ccm", amtsim.DeviceConfig{UUID: slowUUID, DHCPDNSSuffix: e2eLabSuffix, Hostname: "lab-pc-slow"},
			amtsim.AgentConfig{}, 600*time.Millisecond)
	}()
	br.Do("see the live session", uitest.WaitText("#sessions", slowUUID), uitest.WaitText("#sessions", "lab-ccm"))
	br.Screenshot("e2e-dashboard")
	checkNotReloaded(t, br, "dashboard")
	noInjectedMarkup(t, br, "dashboard")
	select {
	case r := <-slow:
		if r.ModeAfter != amtsim.ModeCCM {
			t.Errorf("slow CCM activation: %+v", r)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the slow activation did not finish")
	}
	br.Check()

	// 6. The device list and pages, with the device-reported markup shown as text.
	br.Do("open the device list", chromedp.Navigate(adminURL+"/devices"),
		uitest.WaitText("main table", ccmUUID), uitest.WaitText("main table", e2eXSSHostname),
		uitest.WaitText("main table", e2eXSSSuffix))
	noInjectedMarkup(t, br, "device list")
	br.Screenshot("e2e-devices")
	br.Do("open the XSS device",
		chromedp.Navigate(adminURL+"/devices/"+xssUUID),
		uitest.WaitText(".hostname", e2eXSSHostname),
		uitest.WaitText("ol.timeline", "configure general settings"),
		uitest.WaitText("main", e2eXSSSuffix))
	if failed, err := chromedp.Run(br.Ctx, chromedp.Evaluate[int](`document.querySelectorAll('ol.timeline li.step-failed').length`)); err != nil || failed != 0 {
		t.Errorf("the XSS device's timeline has %d failed steps (%v)", failed, err)
	}
	noInjectedMarkup(t, br, "device page")
	br.Screenshot("e2e-device-xss")
	host, err := chromedp.Run(br.Ctx, chromedp.Evaluate[string](`document.querySelector('.hostname').textContent`))
	if err != nil || host != e2eXSSHostname {
		t.Errorf("the XSS device's host name reads %q (%v), want the literal %q", host, err, e2eXSSHostname)
	}
	br.Check()

	// 7. The CCM device's step timeline, and its password revealed through the button.
	br.Do("open the CCM device",
		chromedp.Navigate(adminURL+"/devices/"+ccmUUID),
		uitest.WaitText("main h1", ccmUUID),
		uitest.WaitText(".hostname", "lab-pc-1"),
		uitest.WaitText("article.record", "profile lab-ccm"),
		uitest.WaitText("ol.timeline", "read general settings"),
		uitest.WaitText("ol.timeline", "configure redirection and user consent"))
	steps, err := chromedp.Run(br.Ctx, chromedp.Evaluate[int](`document.querySelectorAll('ol.timeline li').length`))
	if err != nil || steps < 3 {
		t.Errorf("the CCM device's timeline has %d steps (%v)", steps, err)
	}
	br.Screenshot("e2e-device")
	br.Do("reveal the password",
		chromedp.Click(chromedp.CSS(`form[action$="/reveal"] button[type="submit"]`)),
		uitest.WaitText(".reveal dd.secret", e2eAMTPassword))
	br.Screenshot("e2e-device-revealed")
	br.Check()
	revealed := false
	for _, rec := range logRecords(t, logs.String()) {
		if rec["event"] == events.PasswordRevealed {
			revealed = rec["user"] == e2eAdminUser && rec["device"] == ccmUUID
		}
	}
	if !revealed {
		t.Errorf("no password_revealed record naming user %s and device %s in the box's log", e2eAdminUser, ccmUUID)
	}

	// 8. The same-origin rules and token scopes, over plain HTTPS with the browser's own session.
	cookie := sessionCookie(t, br, adminURL)
	br.Do("open the new profile form", chromedp.Navigate(adminURL+"/profiles/new"), uitest.WaitText("main h1", "New profile"))
	csrf, err := chromedp.Run(br.Ctx, chromedp.Evaluate[string](`document.querySelector('input[name="csrf_token"]').value`))
	if err != nil || csrf == "" {
		t.Fatalf("no CSRF token on the profile form (%v)", err)
	}
	c := adminClient(t, site)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	form := url.Values{"csrf_token": {csrf}, "profileName": {"xo-ccm"}, "activation": {"ccmactivate"},
		"amtPassword": {e2eAMTPassword}, "userConsent": {"All"}, "dhcpEnabled": {"on"}}
	postForm := func(origin string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, adminURL+"/profiles/new", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		req.Header.Set("Cookie", access.SessionCookie+"="+cookie)
		return status(t, c, req)
	}
	if got := postForm("https://evil.example"); got != http.StatusForbidden {
		t.Errorf("cross-origin POST /profiles/new with the session cookie and CSRF token: %d, want 403", got)
	}
	if _, ok := bx.catalog.Catalog.Profile("xo-ccm"); ok {
		t.Error("a cross-origin POST created a profile")
	}
	// The same request from the box's own origin goes through: the refusal above was the origin's doing.
	if got := postForm(adminURL); got != http.StatusSeeOther {
		t.Errorf("same-origin POST /profiles/new: %d, want 303", got)
	}
	if _, ok := bx.catalog.Catalog.Profile("xo-ccm"); !ok {
		t.Error("the same-origin POST did not create its profile")
	}
	stream := func(origin string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, adminURL+"/activity/stream", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Cookie", access.SessionCookie+"="+cookie)
		return status(t, c, req)
	}
	if got := stream("https://evil.example"); got != http.StatusForbidden {
		t.Errorf("cross-origin GET /activity/stream: %d, want 403", got)
	}
	if got := stream(adminURL); got != http.StatusOK {
		t.Errorf("same-origin GET /activity/stream: %d, want 200", got)
	}
	api := func(method string, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, adminURL+"/api/v1/admin/profiles", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+readToken)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if got, body := api(http.MethodGet, ""); got != http.StatusOK || !strings.Contains(body, `"lab-ccm"`) {
		t.Errorf("GET /api/v1/admin/profiles with a read token: %d %.300s", got, body)
	} else if strings.Contains(body, e2eAMTPassword) {
		t.Error("the profile list carries the AMT password")
	}
	if got, body := api(http.MethodPost, `{"profileName":"tok-ccm","activation":"ccmactivate","amtPassword":"`+e2eAMTPassword+
		`","dhcpEnabled":true,"userConsent":"All"}`); got != http.StatusForbidden {
		t.Errorf("POST /api/v1/admin/profiles with a read token: %d %.300s, want 403", got, body)
	}
	if _, ok := bx.catalog.Catalog.Profile("tok-ccm"); ok {
		t.Error("a read token created a profile")
	}

	// Nothing secret reached the log: passwords, the PFX's, the token, the session and the CSRF token.
	all := logs.String()
	for name, secret := range map[string]string{"the AMT password": e2eAMTPassword, "the admin password": e2eAdminPassword,
		"the PFX password": e2ePFXPassword, "the API token": readToken, "the session id": cookie, "the CSRF token": csrf,
		"the site's AMT password": testAMTPassword, "the site's MEBx password": testMEBxPassword} {
		if strings.Contains(all, secret) {
			t.Errorf("%s is in the box's log", name)
		}
	}

	// Give a late onerror handler or CSP report time to surface before the final check.
	time.Sleep(300 * time.Millisecond)
	if d := br.Dialogs(); len(d) > 0 {
		t.Errorf("dialogs opened: %v", d)
	}
	if p := br.Problems(); len(p) > 0 {
		t.Errorf("browser problems: %v", p)
	}
	br.Check()
	t.Logf("end-to-end browser test took %s", time.Since(start).Round(time.Millisecond))
}

// markPage tags the current document, so checkNotReloaded can tell a live update from a reload.
func markPage(t *testing.T, br *uitest.Browser) {
	t.Helper()
	br.Do("mark the page", chromedp.Evaluate[chromedp.Void](`document.body.dataset.e2e = "loaded once"`))
}

func checkNotReloaded(t *testing.T, br *uitest.Browser, page string) {
	t.Helper()
	got, err := chromedp.Run(br.Ctx, chromedp.Evaluate[string](`document.body.dataset.e2e || ""`))
	if err != nil || got != "loaded once" {
		t.Errorf("the %s page reloaded instead of updating live (mark %q, %v)", page, got, err)
	}
}

// noInjectedMarkup fails when a device-supplied string became an element: no <img src=x> from the host name, no
// <b>lab</b> from the DNS suffix.
func noInjectedMarkup(t *testing.T, br *uitest.Browser, page string) {
	t.Helper()
	n, err := chromedp.Run(br.Ctx, chromedp.Evaluate[int](`document.querySelectorAll('img[src="x"], main img').length + `+
		`Array.prototype.filter.call(document.querySelectorAll('b'), function (e) { return e.textContent === 'lab'; }).length`))
	if err != nil || n != 0 {
		t.Errorf("the %s holds %d injected elements (%v): a device string became markup", page, n, err)
	}
}

// sessionCookie is the browser's session cookie for the box.
func sessionCookie(t *testing.T, br *uitest.Browser, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(br.Ctx, uitest.StepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatalf("read the browser's cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == access.SessionCookie {
			if !c.Secure || !c.HTTPOnly {
				t.Errorf("the session cookie: secure %v, httpOnly %v", c.Secure, c.HTTPOnly)
			}
			return c.Value
		}
	}
	t.Fatalf("the browser holds no %s cookie", access.SessionCookie)
	return ""
}

// status sends req and returns the response's status, discarding the body (a stream is closed at once).
func status(t *testing.T, c *http.Client, req *http.Request) int {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// logRecords parses a JSON log into its records.
func logRecords(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a log line is not JSON (%v): %.200s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}
