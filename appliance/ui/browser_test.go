package ui

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/appliance/ui/uitest"
)

// TestBrowser drives Debian's Chromium through the UI at 1366×768 against a TLS server: sign in, dashboard,
// create a profile, upload a PFX with its live preview, watch an activity record arrive over SSE, open a device's
// step timeline, and see a device-reported XSS hostname as text — with no dialog and no CSP violation anywhere.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; run without -short")
	}
	f := newFixture(t)
	srv := httptest.NewTLSServer(f.h)
	t.Cleanup(srv.Close)
	b := uitest.Start(t)
	u := srv.URL

	// Signed out, the dashboard sends us to the sign-in form, which brings us back.
	b.Do("open the dashboard signed out", chromedp.Navigate(u+"/"), uitest.WaitText("h1", "Sign in"))
	b.Screenshot("ui-login")
	b.Do("sign in",
		chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), "tech"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "correct horse"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
		uitest.WaitText("main h1", "Dashboard"),
		uitest.WaitText("#sessions", "AdminSetup <img src=x onerror=alert(1)>"),
	)
	b.Screenshot("ui-dashboard")
	// The sessions tile follows the agent's current step without a reload.
	f.sessions.mu.Lock()
	f.sessions.list[0].Step = "set MEBx password"
	f.sessions.mu.Unlock()
	b.Do("see the session's step change", uitest.WaitText("#sessions", "set MEBx password"))
	b.Check()

	// Create a profile through the form and see it listed.
	b.Do("create a profile",
		chromedp.Navigate(u+"/profiles/new"),
		chromedp.SendKeys(chromedp.CSS(`input[name="profileName"]`), "lab-ccm"),
		chromedp.SendKeys(chromedp.CSS(`input[name="tags"]`), "lab, floor-2"),
	)
	b.Screenshot("ui-profile-new")
	b.Do("save the profile",
		chromedp.Click(chromedp.CSS(`form.editor button[type="submit"]`)),
		uitest.WaitText(".alert.good", "Profile lab-ccm saved."),
		uitest.WaitText("table", "lab-ccm"),
	)
	b.Screenshot("ui-profiles")
	b.Check()

	// Upload a PFX: the htmx preview shows its expiry before saving, the list after.
	pfxPath := filepath.Join(t.TempDir(), "lab.pfx")
	if err := os.WriteFile(pfxPath, testPFX(t, f.now, "lab.example.com", "pfx-pass"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Do("fill the domain form",
		chromedp.Navigate(u+"/domains/new"),
		chromedp.SendKeys(chromedp.CSS(`input[name="profileName"]`), "lab"),
		chromedp.SendKeys(chromedp.CSS(`input[name="domainSuffix"]`), "lab.example.com"),
		chromedp.SendKeys(chromedp.CSS(`input[name="provisioningCertPassword"]`), "pfx-pass"),
		chromedp.SetUploadFiles(chromedp.CSS(`#pfx`), []string{pfxPath}),
		uitest.WaitText("#preview-result", "provision.lab.example.com"),
		uitest.WaitText("#preview-result", "expires in 90d"),
		uitest.WaitText("#preview-result", "matches"),
	)
	b.Screenshot("ui-domain-preview")
	b.Do("save the domain",
		chromedp.Click(chromedp.CSS(`button[name="step"][value="save"]`)),
		uitest.WaitText(".alert.good", "Domain lab saved."),
		uitest.WaitText("table", "expires in 90d"),
	)
	b.Screenshot("ui-domains")
	b.Check()

	// The activity page receives a record published after it loaded, without a reload.
	b.Do("open the activity page", chromedp.Navigate(u+"/activity"), uitest.WaitText("main h1", "Activity"))
	b.Do("mark the page", chromedp.Evaluate[chromedp.Void](`document.body.dataset.loaded = "once"`))
	f.hub.Publish(events.Record{Time: f.now, Name: events.ActivationSucceeded, Level: "INFO",
		Message: "activation succeeded live", Fields: []events.Field{{Key: "hostname", Value: xssImg}}})
	b.Do("see the live record", uitest.WaitText("#activity-rows tr:first-child", "activation succeeded live"))
	if still, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body.dataset.loaded || ""`)); err != nil || still != "once" {
		t.Errorf("the activity page reloaded instead of updating live (%q, %v)", still, err)
	}
	b.Screenshot("ui-activity")
	b.Check()

	// A device's step timeline, and the XSS hostname shown as text.
	b.Do("open the device list", chromedp.Navigate(u+"/devices"), uitest.WaitText("table", "pc-0042"))
	b.Screenshot("ui-devices")
	b.Do("open the failed device",
		chromedp.Navigate(u+"/devices/"+xssUUID),
		uitest.WaitText(".hostname", xssImg),
		uitest.WaitText("ol.timeline", "match domain"),
	)
	imgs, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll('main img').length`))
	if err != nil || imgs != 0 {
		t.Errorf("the device page holds %d <img> elements (%v): a device string became markup", imgs, err)
	}
	b.Screenshot("ui-device-xss")
	b.Do("open the good device", chromedp.Navigate(u+"/devices/"+goodUUID), uitest.WaitText("ol.timeline", "AdminSetup"))
	b.Screenshot("ui-device")

	// When the session ends, the dashboard's live updates take the technician to the sign-in page and back.
	b.Do("open the dashboard", chromedp.Navigate(u+"/"), uitest.WaitText("main h1", "Dashboard"))
	f.auth.mu.Lock()
	clear(f.auth.sessions)
	f.auth.mu.Unlock()
	b.Do("be sent to sign in", uitest.WaitText("main h1", "Sign in"))
	loc, err := chromedp.Run(b.Ctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "/login?next=%2F") {
		t.Errorf("after the session ended the browser is at %q (%v), want /login?next=%%2F", loc, err)
	}

	// Give a late onerror handler or CSP report time to surface before the final check.
	time.Sleep(300 * time.Millisecond)
	if d := b.Dialogs(); len(d) > 0 {
		t.Errorf("dialogs opened: %v", d)
	}
	b.Check()
}
