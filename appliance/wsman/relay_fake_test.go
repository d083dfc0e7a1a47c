package wsman_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// step answers one relayed request.
type step func(ctx context.Context, req []byte) ([]byte, error)

// fakeRelay answers relayed requests from a script, records them, and fails the test when two exchanges overlap
// or the script runs out.
type fakeRelay struct {
	t        testing.TB
	mu       sync.Mutex
	steps    []step
	requests [][]byte
	inFlight atomic.Int32
	loop     step // when set, answers every request (benchmarks)
}

func newFakeRelay(t testing.TB, steps ...step) *fakeRelay {
	return &fakeRelay{t: t, steps: steps}
}

func (f *fakeRelay) Exchange(ctx context.Context, req []byte) ([]byte, error) {
	if n := f.inFlight.Add(1); n != 1 {
		f.t.Errorf("%d exchanges in flight on one relay", n)
	}
	defer f.inFlight.Add(-1)
	if f.loop != nil {
		return f.loop(ctx, req)
	}
	f.mu.Lock()
	f.requests = append(f.requests, append([]byte(nil), req...))
	if len(f.steps) == 0 {
		f.mu.Unlock()
		f.t.Errorf("unexpected request %d:\n%s", len(f.requests), req)
		return nil, errors.New("fake relay: script exhausted")
	}
	s := f.steps[0]
	f.steps = f.steps[1:]
	f.mu.Unlock()
	return s(ctx, req)
}

func (f *fakeRelay) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeRelay) request(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.requests) {
		f.t.Fatalf("request %d was not sent (%d sent)", i, len(f.requests))
	}
	return string(f.requests[i])
}

// done fails the test when scripted steps were not used.
func (f *fakeRelay) done() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.steps) != 0 {
		f.t.Errorf("%d scripted replies were not requested", len(f.steps))
	}
}

var (
	reqMessageID = regexp.MustCompile(`<a:MessageID>([^<]*)</a:MessageID>`)
	relatesTo    = regexp.MustCompile(`(<b:RelatesTo>)[^<]*(</b:RelatesTo>)`)
)

// messageIDOf extracts the MessageID of a raw request the way a test reads it: by its literal element.
func messageIDOf(req []byte) string {
	m := reqMessageID.FindSubmatch(req)
	if m == nil {
		return ""
	}
	return string(m[1])
}

func fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// httpReply renders a raw HTTP/1.1 reply as AMT sends it.
func httpReply(status int, reason string, headers []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, reason)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}

// chunked encodes body as a chunked body with chunk sizes taken in turn from sizes (cycling), lower-case hex
// and an extension on every third chunk, ending with the zero chunk.
func chunked(body string, sizes ...int) string {
	if len(sizes) == 0 {
		sizes = []int{len(body)}
	}
	var b strings.Builder
	for i := 0; len(body) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(body))
		if i%3 == 2 {
			fmt.Fprintf(&b, "%x;ext=1\r\n", n)
		} else {
			fmt.Fprintf(&b, "%x\r\n", n)
		}
		b.WriteString(body[:n])
		b.WriteString("\r\n")
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

var amtHeaders = []string{
	"Date: Thu, 1 Jan 1970 00:00:00 GMT",
	"Server: Intel(R) Active Management Technology 15.0.23.1706",
	"X-Frame-Options: DENY",
	"Content-Type: application/soap+xml; charset=UTF-8",
}

// soapOK answers with the fixture as a chunked 200 whose RelatesTo is the request's MessageID.
func soapOK(t testing.TB, name string, sizes ...int) step {
	body := fixture(t, name)
	return func(_ context.Context, req []byte) ([]byte, error) {
		b := relatesTo.ReplaceAllString(body, "${1}"+messageIDOf(req)+"${2}")
		return []byte(httpReply(200, "OK", append(amtHeaders, "Transfer-Encoding: chunked"), chunked(b, sizes...))), nil
	}
}

// raw answers with fixed bytes.
func raw(s string) step {
	return func(context.Context, []byte) ([]byte, error) { return []byte(s), nil }
}

// rawFor answers with bytes computed from the request.
func rawFor(f func(req []byte) string) step {
	return func(_ context.Context, req []byte) ([]byte, error) { return []byte(f(req)), nil }
}

// silent is rpc-go when AMT does not answer: nothing comes back until the exchange is abandoned.
func silent() step {
	return func(ctx context.Context, _ []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, fmt.Errorf("wait for agent response: %w", ctx.Err())
	}
}

const testRealm = "Digest:F3EB554784E729164447A89F60B641C5"

// unauthorized is AMT's 401 with a digest challenge and its "Log on failed" page.
func unauthorized(nonce string) step {
	return raw(unauthorizedReply("WWW-Authenticate", `Digest realm="`+testRealm+`", nonce="`+nonce+`",stale="false",qop="auth"`))
}

func unauthorizedReply(headerName, challenge string) string {
	page := "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\" >\n<html><head><title>Intel&reg; " +
		"Active Management Technology</title></head><body>Log on failed. Incorrect user name or password, or user " +
		"account temporarily locked.</body></html>"
	return httpReply(401, "Unauthorized", []string{
		headerName + ": " + challenge,
		"Content-Type: text/html",
		"Server: Intel(R) Active Management Technology 15.0.23.1706",
		"Content-Length: " + strconv.Itoa(len(page)),
		"Connection: close",
	}, page)
}
