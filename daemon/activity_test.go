package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/amtedge/amtedge/appliance/events"
)

func TestActivityHandlerTeesEvents(t *testing.T) {
	var buf bytes.Buffer
	hub := events.NewHub(10)
	log := slog.New(newActivityHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}), hub))

	log.Info("not an event", "device", "u-0")
	log.Info("activation started", "event", events.ActivationStarted, "device", "u-1", "profile", "ccm", "domain", "")
	log.With("event", events.AgentRefused, "remote", "10.0.0.9:4000").WithGroup("peer").Warn("refused", "uid", 7)
	// An `event` key inside a group is an ordinary field (the journal reads only the top-level one): not published.
	log.WithGroup("peer").Info("grouped", "event", events.Started)
	log.With("event", events.Reloaded, "profiles", "a,b").Info("configuration reloaded")

	got := hub.Recent(0)
	if len(got) != 3 {
		t.Fatalf("hub holds %d records, want 3 (only those with an event): %+v", len(got), got)
	}
	first := got[0]
	if first.Name != events.ActivationStarted || first.Message != "activation started" || first.Level != "INFO" ||
		first.Get("device") != "u-1" || first.Get("profile") != "ccm" || first.Get("event") != "" || first.Seq != 1 ||
		len(first.Fields) != 2 {
		t.Errorf("first record = %+v", first)
	}
	if got[1].Name != events.AgentRefused || got[1].Level != "WARN" {
		t.Errorf("second record name %q", got[1].Name)
	}
	if got[1].Get("remote") != "10.0.0.9:4000" || got[1].Get("peer.uid") != "7" {
		t.Errorf("second record fields = %+v", got[1].Fields)
	}
	if got[2].Name != events.Reloaded || got[2].Get("profiles") != "a,b" {
		t.Errorf("third record = %+v", got[2])
	}
	// The journal side keeps its own level: the Info records were published but not written.
	out := buf.String()
	if strings.Contains(out, "activation started") || strings.Contains(out, "not an event") || !strings.Contains(out, "refused") {
		t.Errorf("next handler output does not follow its level:\n%s", out)
	}
}
