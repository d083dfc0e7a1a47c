package uitest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWatcherSeesDialogsAndCSPViolations proves the guards the UI tests rely on: a script that runs and opens a
// dialog is recorded, an inline script the CSP blocks is reported, and WaitText gives up at its deadline.
func TestWatcherSeesDialogsAndCSPViolations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; run without -short")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/alert", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><title>a</title><p id="p">hello</p><script>alert("from page")</script>`))
	})
	mux.HandleFunc("/csp", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'")
		_, _ = w.Write([]byte(`<!doctype html><title>c</title><p id="p">strict</p><script>document.title = "ran"</script>`))
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	b := Start(t)

	b.Do("open the alert page", chromedp.Navigate(srv.URL+"/alert"), WaitText("#p", "hello"))
	deadline := time.Now().Add(5 * time.Second)
	for len(b.Dialogs()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if d := b.Dialogs(); len(d) != 1 || !strings.Contains(d[0], "from page") {
		t.Errorf("dialogs = %q, want the page's alert", d)
	}

	b.Do("open the strict page", chromedp.Navigate(srv.URL+"/csp"), WaitText("#p", "strict"))
	deadline = time.Now().Add(5 * time.Second)
	for len(b.Problems()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if p := strings.Join(b.Problems(), "\n"); !strings.Contains(p, "CSP violation: script-src") {
		t.Errorf("problems = %q, want a CSP violation for the inline script", p)
	}

	ctx, cancel := context.WithTimeout(b.Ctx, 500*time.Millisecond)
	defer cancel()
	if err := chromedp.Do(ctx, WaitText("#p", "never there")); err == nil {
		t.Error("WaitText found text that is not on the page")
	}

	dir := t.TempDir()
	t.Setenv("AMTEDGE_ARTIFACTS", dir)
	path := b.Screenshot("strict page/1")
	if filepath.Dir(path) != dir || filepath.Base(path) != "strict_page_1.png" {
		t.Errorf("screenshot path %s", path)
	}
	if png, err := os.ReadFile(path); err != nil || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Errorf("screenshot is not a PNG (%v)", err)
	}
}

func TestFindChromiumNamesThePackage(t *testing.T) {
	t.Setenv("AMTEDGE_CHROMIUM", filepath.Join(t.TempDir(), "missing"))
	if _, err := FindChromium(); err == nil {
		t.Error("a missing AMTEDGE_CHROMIUM was accepted")
	}
	t.Setenv("AMTEDGE_CHROMIUM", "")
	t.Setenv("PATH", t.TempDir())
	p, err := FindChromium()
	if err == nil && p != "/usr/bin/chromium" {
		t.Errorf("FindChromium() = %s with an empty PATH", p)
	}
	if err != nil && !strings.Contains(err.Error(), "package `chromium`") {
		t.Errorf("error does not name the Debian package: %v", err)
	}
}
