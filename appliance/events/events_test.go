package events

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite systemd/amtedge.catalog from the catalog")

// The catalog file shipped by the packages is exactly the rendering of this package's catalog.
func TestCatalogFileIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "systemd", "amtedge.catalog")
	if *update {
		if err := os.WriteFile(path, []byte(Catalog()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the catalog file (go test ./appliance/events -update writes it): %v", err)
	}
	if string(got) != Catalog() {
		t.Fatalf("%s is out of date: run go test ./appliance/events -update", path)
	}
}

func TestCatalogEntries(t *testing.T) {
	id := regexp.MustCompile(`^[0-9a-f]{32}$`)
	name := regexp.MustCompile(`^[a-z][a-z_]*$`)
	seenID, seenName := map[string]bool{}, map[string]bool{}
	for _, e := range All() {
		if !id.MatchString(e.ID) {
			t.Errorf("%s: MESSAGE_ID %q is not 128-bit lower-case hex", e.Name, e.ID)
		}
		if !name.MatchString(e.Name) || seenName[e.Name] || seenID[e.ID] {
			t.Errorf("%s (%s): bad or duplicate name or ID", e.Name, e.ID)
		}
		seenID[e.ID], seenName[e.Name] = true, true
		if e.Summary == "" || strings.Contains(e.Summary, "\n") || e.Explanation == "" || e.Priority < PriErr || e.Priority > PriInfo {
			t.Errorf("%s: summary must be one line, explanation and priority set", e.Name)
		}
		if strings.Contains(e.Explanation, "\n-- ") || strings.HasPrefix(e.Explanation, "-- ") {
			t.Errorf("%s: explanation would start a new catalog block", e.Name)
		}
		if got, ok := Lookup(e.Name); !ok || got != e {
			t.Errorf("Lookup(%q) = %v, %v", e.Name, got, ok)
		}
	}
	// The names the flows and the daemon log must all be in the catalog.
	for _, n := range []string{ActivationSucceeded, ActivationFailed, DeactivationSucceeded, DeactivationFailed,
		MaintenanceSucceeded, MaintenanceFailed, Started, Stopping, SealSoftware, CustodyStandalone} {
		if !seenName[n] {
			t.Errorf("%s is not in the catalog", n)
		}
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup of an unknown name succeeded")
	}
}

// journalctl compiles the catalog file into a temporary root's database and lists every event from it.
func TestCatalogCompilesWithJournalctl(t *testing.T) {
	journalctl, err := exec.LookPath("journalctl")
	if err != nil {
		t.Skip("journalctl is not installed (Debian package systemd)")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "usr", "lib", "systemd", "catalog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "amtedge.catalog"), []byte(Catalog()), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(journalctl, "--update-catalog", "--root", root)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("journalctl --update-catalog: %v\n%s", err, stderr.String())
	}
	out, err := exec.Command(journalctl, "--list-catalog", "--root", root).CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v\n%s", err, out)
	}
	for _, e := range All() {
		if !strings.Contains(string(out), e.ID+" amtedge: "+e.Summary) {
			t.Errorf("journalctl does not list %s (%s):\n%s", e.Name, e.ID, out)
		}
	}
}
