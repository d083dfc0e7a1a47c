// Package uitest drives Debian's Chromium from Go tests (through chromedp) against the box's web UI: it starts a
// headless browser with a per-test profile, watches the page for JavaScript dialogs, console errors, uncaught
// exceptions and Content-Security-Policy violations, waits for text, and saves full-page screenshots as test
// artifacts. The UI's own tests and the daemon's end-to-end browser test share it.
//
// It is test support only: it never belongs in the amtedge binary, and it must never weaken what it checks (no
// CSP bypass, no auto-accepted dialog): a dialog or a CSP violation is a test failure, which is how the UI's XSS
// tests prove that device-supplied strings stay text.
package uitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Viewport is the size the UI must work at: a technician's laptop.
const (
	ViewportWidth  = 1366
	ViewportHeight = 768
)

// StepTimeout bounds one call of Browser.Do.
const StepTimeout = 30 * time.Second

// startTimeout bounds Chromium's start.
const startTimeout = 60 * time.Second

// FindChromium returns the Chromium binary: $AMTEDGE_CHROMIUM when set, else the first of chromium,
// chromium-browser, google-chrome on PATH, else /usr/bin/chromium. The error says how to install it.
func FindChromium() (string, error) {
	if p := os.Getenv("AMTEDGE_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("AMTEDGE_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	return "", errors.New("no Chromium found for the browser tests: install Debian's package `chromium` " +
		"(apt-get install chromium; `make test` does it), or set AMTEDGE_CHROMIUM to a Chrome or Chromium binary")
}

// Browser is one headless Chromium with one tab, and what the watcher saw on it.
type Browser struct {
	// Ctx is the tab's chromedp context: run actions with chromedp.Do(b.Ctx, …) or, bounded, with b.Do.
	Ctx context.Context
	t   testing.TB

	mu       sync.Mutex
	dialogs  []string
	problems []string // console errors, exceptions, CSP violations
}

// cspReporter makes every CSP violation a console error the watcher sees, with the directive and what was
// blocked. DevTools-injected scripts are not subject to the page's CSP, so this runs under the strictest policy.
const cspReporter = `document.addEventListener('securitypolicyviolation', function (e) {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});`

// Start starts headless Chromium for t (as root it needs --no-sandbox, which it sets), with a fresh profile in a
// temp dir, the laptop viewport, and certificate errors ignored so an httptest TLS server works. It stops the
// browser when the test ends. Every dialog that opens is dismissed and recorded; Check fails the test for it.
func Start(t testing.TB, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	bin, err := FindChromium()
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(ViewportWidth, ViewportHeight),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("disable-gpu", true),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{t: t}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	b.Ctx = ctx
	t.Cleanup(func() { cancel(); cancelAlloc() })

	// The first Do starts the browser and must not carry a timeout (it would stop the browser when it fires), so
	// a watchdog cancels the start instead if Chromium hangs.
	started := make(chan struct{})
	go func() {
		select {
		case <-started:
		case <-time.After(startTimeout):
			cancel()
		}
	}()
	err = chromedp.Do(ctx)
	close(started)
	if err != nil {
		t.Fatalf("start Chromium (%s): %v", bin, err)
	}
	b.watch()
	sctx, scancel := context.WithTimeout(ctx, StepTimeout)
	defer scancel()
	if _, err := chromedp.Call(sctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspReporter}); err != nil {
		t.Fatalf("install the CSP violation reporter: %v", err)
	}
	if err := chromedp.Do(sctx, chromedp.EmulateViewport(ViewportWidth, ViewportHeight)); err != nil {
		t.Fatalf("set the viewport: %v", err)
	}
	return b
}

// watch records dialogs (dismissing them, so the page does not block) and console problems.
func (b *Browser) watch() {
	dialogs := chromedp.Events(b.Ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, fmt.Sprintf("%s dialog: %q", ev.Type, ev.Message))
			b.mu.Unlock()
			ctx, cancel := context.WithTimeout(b.Ctx, 5*time.Second)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			cancel()
		}
	}()
	console := chromedp.Console(b.Ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				b.mu.Lock()
				b.problems = append(b.problems, m.String())
				b.mu.Unlock()
			}
		}
	}()
}

// Dialogs is every JavaScript dialog that opened so far.
func (b *Browser) Dialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// Problems is every console error, uncaught exception and CSP violation so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// Check fails the test for every dialog that opened and every console problem, and forgets them.
func (b *Browser) Check() {
	b.t.Helper()
	b.mu.Lock()
	dialogs, problems := b.dialogs, b.problems
	b.dialogs, b.problems = nil, nil
	b.mu.Unlock()
	for _, d := range dialogs {
		b.t.Errorf("a JavaScript dialog opened (script ran from page data?): %s", d)
	}
	for _, p := range problems {
		b.t.Errorf("browser console: %s", p)
	}
}

// Do runs the actions on the tab within StepTimeout and fails the test (naming what) when one fails.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// WaitText waits until the first element matching the CSS selector contains text, polling from Go so that the
// page's CSP (no eval) does not get in the way.
func WaitText(selector, text string) chromedp.Action[chromedp.Void] {
	sel, _ := json.Marshal(selector) // strings always encode
	txt, _ := json.Marshal(text)
	expr := fmt.Sprintf(`(function(){var e=document.querySelector(%s);return !!e && e.textContent.indexOf(%s)>=0;})()`, sel, txt)
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
			if err == nil && ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for %q in %s: %w", text, selector, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// ArtifactsDir is where screenshots go: $AMTEDGE_ARTIFACTS, else <repo root>/test-artifacts/screenshots (the
// repo root is the nearest parent with go.mod). It is created when missing.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("AMTEDGE_ARTIFACTS")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatalf("artifacts dir: %v", err)
		}
		root := wd
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				t.Fatalf("artifacts dir: no go.mod above %s; set AMTEDGE_ARTIFACTS", wd)
			}
			root = parent
		}
		dir = filepath.Join(root, "test-artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves a full-page PNG of the tab as <ArtifactsDir>/<name>.png, logs its path and returns it.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(ArtifactsDir(b.t), unsafeName.ReplaceAllString(name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}
