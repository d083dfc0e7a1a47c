package cache

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets"
)

// The crash test: a child process (this test binary, running TestCrashChild) writes device passwords in a loop
// and prints "ok <n>" after each PutDevice returns; the parent SIGKILLs it at a random moment, reopens the file
// and checks that every password whose "ok" it read is there — write-before-send depends on exactly that.
const (
	crashChildEnv  = "AMTEDGE_CRASH_CHILD" // the state file path; set only in the child
	crashStartEnv  = "AMTEDGE_CRASH_START" // the child's first write number
	crashTrialsEnv = "AMTEDGE_CRASH_TRIALS"

	crashDevices       = 16 // writes rotate over this many devices, so history is rewritten under the kill too
	defaultCrashTrials = 50
)

func crashUUID(n int) string { return fmt.Sprintf("crash-%02d", n%crashDevices) }

func crashPassword(n int) string { return fmt.Sprintf("amt-%07d-P@ss:w0rd!ü", n) }

func crashNumber(pw string) (int, error) {
	s, ok := strings.CutPrefix(pw, "amt-")
	if !ok || len(s) < 7 {
		return 0, fmt.Errorf("password %q was not written by the crash child", pw)
	}
	return strconv.Atoi(s[:7])
}

// TestCrashChild is the child side of TestCrash; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("run by TestCrash")
	}
	start, err := strconv.Atoi(os.Getenv(crashStartEnv))
	if err != nil {
		fmt.Printf("error bad %s: %v\n", crashStartEnv, err)
		os.Exit(2)
	}
	s, err := Open(path, testDEK(9))
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	// Stop by itself if the parent never kills it, so a broken parent cannot leave it running.
	deadline := time.Now().Add(20 * time.Second)
	for n := start; time.Now().Before(deadline); n++ {
		c := secrets.Credentials{AMTPassword: crashPassword(n), MEBxPassword: "mebx-" + strconv.Itoa(n), State: secrets.Pending}
		if err := s.PutDevice(t.Context(), crashUUID(n), c); err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(2)
		}
		// fmt.Printf writes straight to the unbuffered os.Stdout: once the parent reads this line, the put
		// had returned.
		fmt.Printf("ok %d\n", n)
	}
	os.Exit(3)
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	trials := defaultCrashTrials
	if v := os.Getenv(crashTrialsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashTrialsEnv, v)
		}
		trials = n
	}
	path := filepath.Join(t.TempDir(), "state.db")
	next := 0 // the first write number of the next trial: all before it are committed and checked
	acked, killedIdle := 0, 0
	start := time.Now()
	for trial := range trials {
		// Most trials start the kill timer once the child has opened the file, so it lands among writes; one
		// in five starts it at exec, so some kills land in process start-up and Open.
		fromStart := trial%5 == 4
		delay := time.Duration(5+rand.IntN(56)) * time.Millisecond
		lastAcked, childErr := runCrashChild(t, path, next, delay, fromStart)
		if childErr != "" {
			t.Fatalf("trial %d: child failed: %s", trial, childErr)
		}
		if lastAcked < next {
			killedIdle++
		}
		acked += max(0, lastAcked-next+1)
		next = verifyAfterCrash(t, trial, path, next, lastAcked)
	}
	t.Logf("%d trials, %d acknowledged writes (%d committed), %d kills before the first ack, %s",
		trials, acked, next, killedIdle, time.Since(start).Round(time.Millisecond))
}

// runCrashChild runs one child writing from write number first, kills it after delay and returns the highest
// write number it acknowledged (first-1 when none), or the child's own error line.
func runCrashChild(t *testing.T, path string, first int, delay time.Duration, fromStart bool) (lastAcked int, childErr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, crashStartEnv+"="+strconv.Itoa(first))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		// Read errors end the stream like EOF; the child is gone either way.
		io.Copy(io.Discard, out)
	}()

	lastAcked = first - 1
	handle := func(line string) {
		switch {
		case strings.HasPrefix(line, "ok "):
			n, err := strconv.Atoi(strings.TrimPrefix(line, "ok "))
			if err != nil || n != lastAcked+1 {
				t.Fatalf("child printed %q after ok %d", line, lastAcked)
			}
			lastAcked = n
		case strings.HasPrefix(line, "error "):
			childErr = line
		}
	}

	var timer <-chan time.Time
	if fromStart {
		timer = time.After(delay)
	}
	safety := time.After(30 * time.Second)
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break wait // the child ended by itself
			}
			if line == "ready" && timer == nil {
				timer = time.After(delay)
			}
			handle(line)
		case <-timer:
			break wait
		case <-safety:
			cmd.Process.Kill()
			t.Fatalf("child never became ready; stderr: %s", stderr.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil && !strings.Contains(err.Error(), "process already finished") {
		t.Fatalf("kill child: %v", err)
	}
	// Every line the child printed before it died is in the pipe: each one is an acknowledged write.
	for line := range lines {
		handle(line)
	}
	cmd.Wait()
	return lastAcked, childErr
}

// verifyAfterCrash reopens the file after a kill, checks it, and checks every device holds exactly what the
// committed writes put there; it returns the number of the next write.
func verifyAfterCrash(t *testing.T, trial int, path string, first, lastAcked int) int {
	t.Helper()
	ctx := t.Context()
	s, err := Open(path, testDEK(9))
	if err != nil {
		t.Fatalf("trial %d: reopen after the kill: %v", trial, err)
	}
	defer s.Close()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("trial %d: %v", trial, err)
	}

	// Writes are sequential, so the newest committed write is the highest number among the current sets.
	lastCommitted := first - 1
	devices := map[string]secrets.Device{}
	uuids, err := s.ListDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, uuid := range uuids {
		d, err := s.Device(ctx, uuid)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		devices[uuid] = d
		n, err := crashNumber(d.Current.AMTPassword)
		if err != nil {
			t.Fatalf("trial %d: device %s: %v", trial, uuid, err)
		}
		lastCommitted = max(lastCommitted, n)
	}
	if lastCommitted < lastAcked {
		t.Fatalf("trial %d: write %d was acknowledged but the newest write on disk is %d: an acknowledged password was lost",
			trial, lastAcked, lastCommitted)
	}
	if lastCommitted > lastAcked+1 {
		t.Fatalf("trial %d: write %d is on disk but only %d was acknowledged; at most one write can be in flight",
			trial, lastCommitted, lastAcked)
	}

	// Every device holds exactly its committed writes, newest first, cut to the history limit.
	for dev := range crashDevices {
		var want []string
		for n := lastCommitted; n >= 0 && len(want) < DefaultHistoryLimit+1; n-- {
			if n%crashDevices == dev {
				want = append(want, crashPassword(n))
			}
		}
		d, ok := devices[crashUUID(dev)]
		if len(want) == 0 {
			if ok {
				t.Fatalf("trial %d: device %s exists but was never written", trial, crashUUID(dev))
			}
			continue
		}
		if !ok {
			t.Fatalf("trial %d: device %s is missing", trial, crashUUID(dev))
		}
		got := []string{d.Current.AMTPassword}
		for _, c := range d.History {
			got = append(got, c.AMTPassword)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("trial %d: device %s holds %q, want %q", trial, crashUUID(dev), got, want)
		}
	}

	// The outbox holds one entry per write committed in this trial (earlier ones were acked below), in
	// order: a record and its outbox entry are committed together or not at all.
	entries, err := s.Outbox(ctx)
	if err != nil {
		t.Fatalf("trial %d: %v", trial, err)
	}
	if len(entries) != lastCommitted-first+1 {
		t.Fatalf("trial %d: outbox holds %d entries for %d committed writes", trial, len(entries), lastCommitted-first+1)
	}
	for i, e := range entries {
		if e.Op != OpPut || e.Kind != KindDevice || e.Name != crashUUID(first+i) {
			t.Fatalf("trial %d: outbox entry %d = %s %s %q, want put device %q", trial, i, e.Op, e.Kind, e.Name, crashUUID(first+i))
		}
		if err := s.Ack(ctx, e.Seq); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
	}
	return lastCommitted + 1
}
