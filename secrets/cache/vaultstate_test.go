package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets"
)

// TestVaultState checks the sync's bookkeeping: versions and the last pull time survive a reopen, pulled secrets
// queue nothing, acks remove only the entries given, and Check accepts the vault bucket.
func TestVaultState(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	if err := s.PutDevice(ctx, "d1", secrets.Credentials{AMTPassword: "a", State: secrets.Pending}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDevice(ctx, "d2", secrets.Credentials{AMTPassword: "b", State: secrets.Pending}); err != nil {
		t.Fatal(err)
	}
	ob, _ := s.Outbox(ctx)
	if err := s.AckPushed(ctx, []Pushed{{Kind: KindDevice, Name: "d1", Seqs: []uint64{ob[0].Seq}, Version: 3}}); err != nil {
		t.Fatal(err)
	}
	out, err := s.ApplyPulled(ctx, []Pulled{
		{Kind: KindDomain, Name: "corp", Version: 2, Domain: secrets.DomainSecret{PFX: []byte{0, 1}, Password: "p"}},
		{Kind: KindDevice, Name: "d2", Version: 5, Device: secrets.Credentials{AMTPassword: "other"}},
		{Kind: KindDevice, Name: "d3", Version: 1, Device: secrets.Credentials{AMTPassword: "c"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out != (PullOutcome{Stored: 2, Deferred: 1}) {
		t.Fatalf("outcome %+v", out)
	}
	at := time.Date(2026, 11, 1, 2, 3, 4, 0, time.UTC)
	if err := s.SetLastPull(ctx, at); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, path, testDEK(1))
	defer s.Close()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	vs, err := s.VaultVersions(ctx, KindDevice)
	if err != nil || len(vs) != 2 || vs["d1"] != 3 || vs["d3"] != 1 {
		t.Fatalf("device versions %v, %v", vs, err)
	}
	// VaultVersion answers as VaultVersions does, one name at a time; 0 for a name without a version.
	for _, name := range []string{"d1", "d2", "d3", "absent"} {
		if v, err := s.VaultVersion(ctx, KindDevice, name); err != nil || v != vs[name] {
			t.Errorf("VaultVersion(%q) = %d, %v; want %d", name, v, err, vs[name])
		}
	}
	if v, err := s.VaultVersion(ctx, KindDomain, "d1"); err != nil || v != 0 {
		t.Errorf("VaultVersion of another kind's name = %d, %v; want 0", v, err)
	}
	if last, err := s.LastPull(ctx); err != nil || !last.Equal(at) {
		t.Fatalf("last pull %v, %v", last, err)
	}
	if ob, _ := s.Outbox(ctx); len(ob) != 1 || ob[0].Name != "d2" {
		t.Fatalf("outbox after ack and pull: %+v", ob)
	}
	if d, _ := s.Device(ctx, "d2"); d.Current.AMTPassword != "b" {
		t.Fatal("a pull overwrote a device with queued writes")
	}
}

func TestKeepForeign(t *testing.T) {
	s, _ := openTemp(t, WithHistoryLimit(MinHistoryLimit))
	ctx := context.Background()
	if _, err := s.KeepForeign(ctx, "nope", "x", ""); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("absent device: %v", err)
	}
	if err := s.PutDevice(ctx, "d", secrets.Credentials{AMTPassword: "p0", State: secrets.Pending}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Outbox(ctx)
	if kept, err := s.KeepForeign(ctx, "d", "p0", ""); err != nil || kept {
		t.Fatalf("a password the box has: kept %t, %v", kept, err)
	}
	if kept, err := s.KeepForeign(ctx, "d", "f", "m"); err != nil || !kept {
		t.Fatalf("foreign: kept %t, %v", kept, err)
	}
	d, _ := s.Device(ctx, "d")
	if len(d.History) != 1 || d.History[0].AMTPassword != "f" || d.History[0].State != secrets.Confirmed || !slices.Equal(d.Candidates(), []string{"p0", "f"}) {
		t.Fatalf("after keep: history %d, candidates %d", len(d.History), len(d.Candidates()))
	}
	if after, _ := s.Outbox(ctx); len(after) != len(before) {
		t.Fatal("KeepForeign queued an outbox entry")
	}
	for i := range MinHistoryLimit {
		if err := s.PutDevice(ctx, "d", secrets.Credentials{AMTPassword: fmt.Sprint("n", i), State: secrets.Confirmed}); err != nil {
			t.Fatal(err)
		}
	}
	if kept, err := s.KeepForeign(ctx, "d", "g", ""); err != nil || kept {
		t.Fatalf("full history: kept %t, %v", kept, err)
	}
}
